"""The ``basemodel`` command line.

Subcommands:

* ``basemodel dbt-path``: print where the ``basemodel`` dbt package is installed, for
  ``packages.yml: - local: <path>`` in your own dbt project.
* ``basemodel demo``: the whole pipeline on generated events (DuckDB, the dbt package,
  Cleora, EMDE, pretraining, churn fine-tuning, grid search) with a report and plots.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its arguments
and sets ``handler`` to ``_run_<name>(args) -> exit status``. To add one, write that pair and
list the ``_add_`` function in ``_SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__


def _add_dbt_path(subparsers):
    parser = subparsers.add_parser(
        "dbt-path",
        help="print the path of the basemodel dbt package shipped with this library",
        description=(
            "Print the folder of the basemodel dbt package installed with sklearn-basemodel. "
            "Use it from your dbt project's packages.yml:\n\n"
            "  packages:\n"
            "    - local: <the printed path>\n\n"
            "then run `dbt deps`."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=_run_dbt_path)


def _run_dbt_path(args):
    from .warehouse import dbt_package_path

    print(dbt_package_path())
    return 0


def _positive_int(text):
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _add_demo(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on generated events and write a report",
        description=(
            "Generate raw events (about 1% malformed) into a DuckDB file, run the basemodel dbt "
            "package on it, embed products and categories with Cleora, sketch histories with "
            "EMDE, pretrain a SketchRecommender, fine-tune a SketchClassifier for churn with a "
            "small GridSearchCV, and compare with popularity, personal-frequency and RFM "
            "gradient-boosting baselines. Prints each stage with its time and writes "
            "report.md, results.json, plots, the DuckDB file and the dbt project to the "
            "output folder."
        ),
    )
    parser.add_argument(
        "--events", type=_positive_int, default=200_000, metavar="N",
        help="number of generated raw events (default: 200000; the default size runs in a "
        "few minutes on 2 cores)",
    )  # fmt: skip
    parser.add_argument(
        "--output", default="demo_output", metavar="DIR",
        help="output folder (default: ./demo_output); files of an earlier run are replaced",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--no-grid-search", dest="grid_search", action="store_false",
        help="skip the GridSearchCV stage",
    )  # fmt: skip
    parser.add_argument(
        "--no-plots", dest="plots", action="store_false", help="do not draw the plots"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="print only the final report"
    )
    parser.set_defaults(handler=_run_demo)


def _run_demo(args):
    from .demo import run_demo

    if args.events < 1000:
        print("basemodel demo: --events must be at least 1000", file=sys.stderr)
        return 2
    results = run_demo(
        n_events=args.events,
        output_dir=args.output,
        random_state=args.seed,
        grid_search=args.grid_search,
        plots=args.plots,
        verbose=not args.quiet,
    )
    if args.quiet:
        from .report import format_report

        print(format_report(results))
    return 0


# The subcommands, in the order `basemodel --help` lists them.
_SUBCOMMANDS = (_add_dbt_path, _add_demo)


def _parser():
    parser = argparse.ArgumentParser(
        prog="basemodel",
        description="Behavioral profiles from event data: tools around sklearn-basemodel.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv=None):
    """Run the ``basemodel`` command line.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        The exit status: 0 on success, 2 for a usage error (as argparse).
    """
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
