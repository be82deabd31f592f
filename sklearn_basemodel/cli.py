"""The ``basemodel`` command line.

Subcommands:

* ``basemodel dbt-path``: print where the ``basemodel`` dbt package is installed, for
  ``packages.yml: - local: <path>`` in your own dbt project.
* ``basemodel demo``: the workflow below on generated events (init, evaluate, fit, predict,
  explain), with every raw row reconciled, a report and plots.
* ``basemodel init | fit | evaluate | predict | update | explain``: the workflow on your own
  warehouse, driven by ``basemodel.yml`` (:mod:`sklearn_basemodel.workflow`; the same
  functions in Python).

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its arguments
and sets ``handler`` to ``_run_<name>(args) -> exit status``. To add one, write that pair and
list the ``_add_`` function in ``_SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import os
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
            "Generate raw events (about 1% malformed) into a DuckDB file and run the user "
            "workflow on them: `basemodel init` on the table and a few edits to basemodel.yml, "
            "`evaluate` (the backtest against popularity, own-history and RFM gradient-boosting "
            "baselines), `fit`, `predict --as-of now` (scores written back) and `explain churn`; "
            "every raw row is reconciled with the generator's record. Prints each stage with "
            "its time and writes report.md, results.json, plots, the DuckDB file and the "
            "project to the output folder."
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
        "--no-grid-search", dest="no_grid_search", action="store_true",
        help="deprecated, no effect: the workflow chooses each task's model itself",
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
    if args.no_grid_search:
        print("basemodel demo: --no-grid-search is deprecated and has no effect (the workflow "
              "chooses each task's model itself)", file=sys.stderr)  # fmt: skip
    results = run_demo(
        n_events=args.events,
        output_dir=args.output,
        random_state=args.seed,
        plots=args.plots,
        verbose=not args.quiet,
    )
    if args.quiet:
        from .report import format_report

        print(format_report(results))
    return 0


# --------------------------------------------------------------------------- the workflow
def _add_project_argument(parser):
    parser.add_argument(
        "--project", default="basemodel.yml", metavar="FILE",
        help="the project file (default: ./basemodel.yml)",
    )  # fmt: skip


def _add_model_argument(parser, help_text):
    parser.add_argument("--model", default=None, metavar="DIR", help=help_text)


def _model_dir(args):
    """--model, else model/ next to the project file."""
    from pathlib import Path

    return args.model or str(Path(args.project).parent / "model")


def _add_init(subparsers):
    parser = subparsers.add_parser(
        "init", help="inspect a DuckDB table and write a starter basemodel.yml and dbt project",
        description="Inspect the events table, guess which columns are the customer, the time, "
        "the items, the amount and the basket or session, and write basemodel.yml (edit the "
        "lines marked CHECK) next to a dbt/ project that installs the basemodel package.",
    )  # fmt: skip
    parser.add_argument("--duckdb", required=True, metavar="FILE", help="the DuckDB database file")
    parser.add_argument("--table", required=True, metavar="NAME", help="the events table (schema.table)")
    parser.add_argument("--dir", default=".", metavar="DIR", help="where to write (default: .)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing project")
    parser.set_defaults(handler=_run_init)


def _run_init(args):
    from .workflow import init_project

    path = init_project(args.dir, duckdb=args.duckdb, table=args.table, force=args.force)
    print(f"Wrote {path} and {path.parent / 'dbt'}/. Check the lines marked CHECK, then run "
          "`basemodel fit`.")  # fmt: skip
    return 0


def _add_fit(subparsers):
    parser = subparsers.add_parser(
        "fit", help="run the dbt package, fit the profile and every task, save a model directory",
    )
    _add_project_argument(parser)
    _add_model_argument(parser, "where to save the model (default: model/ next to the project)")
    parser.set_defaults(handler=_run_fit)


def _run_fit(args):
    from .workflow import fit

    result = fit(args.project, _model_dir(args))
    print(f"Saved {result['model_dir']} (model version {result['model_version']}).")
    return 0


def _add_evaluate(subparsers):
    parser = subparsers.add_parser(
        "evaluate", help="temporal backtest of every task against the baselines, as a report",
    )
    _add_project_argument(parser)
    parser.add_argument("--output", default=None, metavar="DIR",
                        help="report folder (default: evaluation/ next to the project)")  # fmt: skip
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args):
    from .workflow import evaluate

    evaluate(args.project, args.output)
    return 0


def _add_predict(subparsers, name="predict"):
    helps = {
        "predict": "score the population as of a cut-off and write the scores back",
        "update": "fold new events into the stored profiles and refresh the scores",
    }
    parser = subparsers.add_parser(name, help=helps[name])
    _add_project_argument(parser)
    _add_model_argument(parser, "the model directory (default: model/ next to the project)")
    parser.add_argument("--as-of", default="now", metavar="now|DATE",
                        help="the cut-off: now (the last event) or a date/time (default: now)")  # fmt: skip
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help="do not write the tables back (print a summary only)")  # fmt: skip
    parser.set_defaults(handler=_run_predict, command=name)


def _run_predict(args):
    from . import workflow

    run = workflow.predict if args.command == "predict" else workflow.update
    result = run(_model_dir(args), args.as_of, write=args.write)
    written = ", ".join(f"{t} {n:,} rows" for t, n in result["written"].items()) or "nothing written"
    print(f"As of {result['as_of']}: {result['population']:,} customers scored; {written}.")
    return 0


def _add_update(subparsers):
    _add_predict(subparsers, "update")


def _add_explain(subparsers):
    parser = subparsers.add_parser(
        "explain", help="what drives a task's scores, by source table, column and value",
    )
    _add_project_argument(parser)
    _add_model_argument(parser, "the model directory (default: model/ next to the project)")
    parser.add_argument("--task", required=True, help="the task, e.g. churn")
    parser.add_argument("--level", choices=("value", "column"), default="value")
    parser.add_argument("--output", default=None, metavar="FILE.csv", help="also write a CSV")
    parser.set_defaults(handler=_run_explain)


def _run_explain(args):
    from .workflow import explain

    frame = explain(_model_dir(args), args.task, level=args.level)
    if args.output:
        frame.to_csv(args.output, index=False)
    return 0


# The subcommands, in the order `basemodel --help` lists them.
_SUBCOMMANDS = (_add_init, _add_fit, _add_evaluate, _add_predict, _add_update, _add_explain,
                _add_demo, _add_dbt_path)  # fmt: skip


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
        The exit status: 0 on success, 2 for a usage error (as argparse) or a project file
        that cannot be used (the message names the key and the fix).
    """
    # Idle OpenMP threads (torch's, scikit-learn's) sleep instead of spinning: on a few shared
    # cores spinning threads of one library starve the other's. Read when a runtime starts, so
    # it takes effect only if set before torch or scikit-learn is first imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except _user_errors() as error:  # a mistake in the project or the arguments: no traceback
        print(f"basemodel {_command(args)}: {error}", file=sys.stderr)
        return 2


def _command(args):
    return getattr(args, "command", None) or args.handler.__name__.removeprefix("_run_").replace("_", "-")


def _user_errors():
    from .workflow import ProjectError

    return (ProjectError, FileExistsError, FileNotFoundError)


if __name__ == "__main__":
    sys.exit(main())
