"""scikit-learn's estimator checks over every public estimator, with one table of expected failures.

Most estimators here take *rows of entity keys* (baskets, histories), not numeric feature
matrices, and declare so in their tags; scikit-learn then runs only the checks that do not feed
arrays. To run the array checks as well, the estimators that can read a numeric 2-D array as rows
of (float) keys are checked through small test-only subclasses that declare such arrays valid
input (``_KeysFrom2DArrays``), and the recommenders, whose ``y`` is rows of target items, read
the checks' class labels as one-item target rows (``_LabelsAsTargetRows``). Nothing else of the
estimator is changed. The baselines (``sklearn_basemodel.baselines``) take rows of baskets, rows of
items or frames of list columns and return item keys, so the array checks, which compare numeric
predictions, do not apply: ``_RowsOfKeys`` declares their input non-tabular (as the embedders'
own tags do) and scikit-learn runs its API checks on them (cloning, parameters, tags, repr).

``EXPECTED_FAILURES`` is the only list of checks that may fail, each with its reason. Checks
run in strict xfail mode: a listed check that starts to pass fails the suite, so the table
cannot go stale. The networks (skorch) train during most checks: their checks are marked slow
(``make test-slow``), the rest run in ``make test``.
"""

import inspect

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_basemodel import (
    CleoraEmbedder,
    EMDESketcher,
    RandomVectorEmbedder,
    SketchClassifier,
    SketchRecommender,
    SketchRegressor,
    TextEmbedder,
)
from sklearn_basemodel.baselines import (
    EASERecommender,
    ItemKNNRecommender,
    PersonalFrequencyRecommender,
    PopularityRecommender,
    RFMTransformer,
    TIFUKNNRecommender,
)
from sklearn_basemodel.blending import BlendedClassifier, BlendedRegressor

pytestmark = pytest.mark.filterwarnings(
    # the checks transform arrays with keys unseen in fit on purpose
    "ignore::sklearn_basemodel.exceptions.UnknownEntityWarning"
)


# --------------------------------------------------------------------------- test-only adapters
class _KeysFrom2DArrays:
    """Declare numeric 2-D arrays valid input: each array row is one row of (float) keys.

    The public classes declare non-tabular input (rows of keys of any length); this lets the
    checks written for tabular estimators run on them too.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        return tags


class _LabelsAsTargetRows:
    """A recommender's ``y`` is rows of target items: each class label of the checks becomes a
    one-item row (a multi-output label row is a row of several items), in every method that
    takes ``y``."""

    def fit(self, X, y=None, **fit_params):
        return super().fit(X, _label_rows(y), **fit_params)

    def partial_fit(self, X, y=None, **fit_params):
        return super().partial_fit(X, _label_rows(y), **fit_params)

    def score(self, X, y, **params):
        return super().score(X, _label_rows(y), **params)


def _label_rows(y):
    return None if y is None else [list(np.atleast_1d(label)) for label in np.asarray(y)]


class _RowsOfKeys:
    """Declare input that is neither an array nor text: rows of baskets, or a frame of list
    columns. scikit-learn then runs only the checks that need no data (API, tags, cloning)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


class _CleoraOn2DArrays(_KeysFrom2DArrays, CleoraEmbedder):
    pass


class _SketcherOn2DArrays(_KeysFrom2DArrays, EMDESketcher):
    pass


class _RandomVectorsOn2DArrays(_KeysFrom2DArrays, RandomVectorEmbedder):
    pass


class _PopularityOnRows(_RowsOfKeys, PopularityRecommender):
    pass


class _PersonalFrequencyOnRows(_RowsOfKeys, PersonalFrequencyRecommender):
    pass


class _EASEOnRows(_RowsOfKeys, EASERecommender):
    pass


class _ItemKNNOnRows(_RowsOfKeys, ItemKNNRecommender):
    pass


class _TIFUKNNOnRows(_RowsOfKeys, TIFUKNNRecommender):
    pass


class _RFMOnListColumns(_RowsOfKeys, RFMTransformer):
    pass


class _RecommenderWithLabelTargets(_LabelsAsTargetRows, SketchRecommender):
    pass


TINY_NETWORK = {"hidden_units": 16, "n_blocks": 1, "batch_size": 32, "lr": 1e-2,
                "max_epochs": 15, "random_state": 0}  # fmt: skip

FAST_ESTIMATORS = [
    _CleoraOn2DArrays(n_components=4, random_state=0),
    _SketcherOn2DArrays(RandomVectorEmbedder(8), n_sketches=3, sketch_dim=4, random_state=0),
    _RandomVectorsOn2DArrays(n_components=4, random_state=0),
    TextEmbedder(n_components=2, random_state=0),
    _PopularityOnRows(),
    _PersonalFrequencyOnRows(),
    _EASEOnRows(),
    _ItemKNNOnRows(),
    _TIFUKNNOnRows(),
    _RFMOnListColumns(),
    # meta-estimators: checked with quick candidates, one of which does not accept NaN
    BlendedClassifier([("line", LogisticRegression()),
                       ("tree", DecisionTreeClassifier(max_depth=2, random_state=0))],
                      random_state=0),
    BlendedRegressor([("line", LinearRegression()),
                      ("tree", DecisionTreeRegressor(max_depth=2, random_state=0))],
                     random_state=0),
]

NETWORK_ESTIMATORS = [
    SketchClassifier(**TINY_NETWORK),
    SketchRegressor(**TINY_NETWORK),
    # a seeded target sketcher: see test_recommender_default_target_sketcher_is_seeded
    _RecommenderWithLabelTargets(
        EMDESketcher(n_sketches=3, sketch_dim=4, random_state=0), k=2, **TINY_NETWORK
    ),
]

# --------------------------------------------------------------------------- expected failures
_NO_FEATURE_COUNT = "rows are sets of keys of any length: there is no n_features_in_"
_TOP_K = ("predict returns the k best entity keys of each row, shape (n_rows, k), not one "
          "label per row")
_SKORCH_INIT = "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_"

# (estimator class, check, reason): the ONLY checks allowed to fail.
EXPECTED_FAILURES = [
    (_CleoraOn2DArrays, "check_n_features_in_after_fitting", _NO_FEATURE_COUNT),
    (_CleoraOn2DArrays, "check_n_features_in", _NO_FEATURE_COUNT),
    (_CleoraOn2DArrays, "check_transformer_general",
     "rows of any length are valid; there is no feature count to check"),
    (_CleoraOn2DArrays, "check_complex_data", "complex numbers are valid (hashable) entity keys"),
    (_CleoraOn2DArrays, "check_estimators_nan_inf",
     "inf is a valid key; NaN keys are rejected (tests/test_cleora.py)"),
    (_CleoraOn2DArrays, "check_estimators_empty_data_messages",
     "an all-empty input is rejected with this library's own message"),
    (_CleoraOn2DArrays, "check_transformer_preserve_dtypes",
     "embeddings are float32 by design, whatever the key dtype"),
    (_CleoraOn2DArrays, "check_fit2d_predict1d",
     "a 1-D array is rows of scalars: rejected with this library's message"),
    (_SketcherOn2DArrays, "check_n_features_in_after_fitting", _NO_FEATURE_COUNT),
    (_SketcherOn2DArrays, "check_n_features_in", _NO_FEATURE_COUNT),
    (_SketcherOn2DArrays, "check_transformer_general",
     "rows of any length are valid, so there is no feature-count mismatch"),
    (_SketcherOn2DArrays, "check_complex_data", "complex numbers are valid (hashable) keys"),
    (_SketcherOn2DArrays, "check_estimators_empty_data_messages",
     "zero keys per row raises this library's message"),
    (_SketcherOn2DArrays, "check_estimators_nan_inf", "inf is a valid (hashable) key"),
    (_SketcherOn2DArrays, "check_fit2d_predict1d",
     "a scalar row is rejected with this library's message"),
    (_RandomVectorsOn2DArrays, "check_n_features_in_after_fitting", _NO_FEATURE_COUNT),
    (_RandomVectorsOn2DArrays, "check_n_features_in", _NO_FEATURE_COUNT),
    (_RandomVectorsOn2DArrays, "check_complex_data", "complex numbers are valid (hashable) keys"),
    (_RandomVectorsOn2DArrays, "check_estimators_empty_data_messages",
     "zero keys per row raises this library's message"),
    (_RandomVectorsOn2DArrays, "check_estimators_nan_inf", "inf is a valid (hashable) key"),
    (SketchClassifier, "check_no_attributes_set_in_init", _SKORCH_INIT),
    (SketchClassifier, "check_do_not_raise_errors_in_init_or_set_params",
     ("skorch re-initialises callbacks inside set_params, so a nonsense callbacks value fails "
      "there instead of in fit")),
    (SketchRegressor, "check_no_attributes_set_in_init", _SKORCH_INIT),
    (_RecommenderWithLabelTargets, "check_no_attributes_set_in_init", _SKORCH_INIT),
    (_RecommenderWithLabelTargets, "check_estimator_sparse_array", _TOP_K),
    (_RecommenderWithLabelTargets, "check_estimator_sparse_matrix", _TOP_K),
]  # fmt: skip


def expected_failed_checks(estimator):
    """The rows of ``EXPECTED_FAILURES`` for this estimator's class, as {check: reason}."""
    return {check: reason for cls, check, reason in EXPECTED_FAILURES if type(estimator) is cls}


def _with_checks(estimators):
    """``parametrize_with_checks`` in strict xfail mode where scikit-learn offers it (>= 1.8)."""
    options = {"expected_failed_checks": expected_failed_checks}
    if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters:
        options["xfail_strict"] = True
    return parametrize_with_checks(estimators, **options)


@_with_checks(FAST_ESTIMATORS)
def test_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
@_with_checks(NETWORK_ESTIMATORS)
def test_network_estimator_checks(estimator, check):
    check(estimator)


def test_expected_failures_name_checked_estimators():
    """Every row of the table names an estimator that is checked above."""
    checked = {type(e) for e in FAST_ESTIMATORS + NETWORK_ESTIMATORS}
    assert {cls for cls, _, _ in EXPECTED_FAILURES} <= checked
    assert len({(cls, check) for cls, check, _ in EXPECTED_FAILURES}) == len(EXPECTED_FAILURES)


def test_public_classes_declare_rows_not_arrays():
    """The adapters above only widen the input the checks may use; the public classes take rows
    of keys and say so, so scikit-learn's tabular checks do not apply to them as shipped."""
    for cls in (CleoraEmbedder, EMDESketcher, RandomVectorEmbedder, TextEmbedder):
        tags = cls().__sklearn_tags__()
        assert not tags.input_tags.two_d_array and tags.input_tags.string, cls.__name__


@pytest.mark.slow
def test_recommender_default_target_sketcher_is_seeded():
    rng = np.random.default_rng(0)
    X = rng.random((40, 6)).astype(np.float32)
    y = [[f"item{i}"] for i in rng.integers(0, 6, 40)]
    fits = [SketchRecommender(k=2, **{**TINY_NETWORK, "max_epochs": 1}).fit(X, y)
            for _ in range(2)]  # fmt: skip
    np.testing.assert_array_equal(fits[0].target_sketcher_.codes_, fits[1].target_sketcher_.codes_)
