"""The one ``clipxai`` command. Each verb is one stage of the workflow and mirrors one Snakemake rule.

A verb lives in ``clipxai.commands.<module>`` and defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Bad input surfaces as one line (``path: field: expected ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from clipxai.commands import COMMAND_MODULES
from clipxai.errors import InputError


def _requested_verb(argv: list[str]) -> str | None:
    """The verb module named on the command line, if any (the first argument that is not an option)."""
    args = iter(argv)
    for arg in args:
        if arg == "--log-level":
            next(args, None)
        elif not arg.startswith("-"):
            module = arg.replace("-", "_")
            return module if module in COMMAND_MODULES else None
    return None


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict]:
    """The parser of every verb, or of ``only`` that one: a job imports just the verb it runs (seconds per job)."""
    parser = argparse.ArgumentParser(prog="clipxai", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG, INFO, WARNING)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    runners = {}
    for module_name in [only] if only else COMMAND_MODULES:
        module = importlib.import_module(f"clipxai.commands.{module_name}")
        # argparse %-formats help strings: a literal "95% CI" in a verb's HELP must not break --help
        verb = sub.add_parser(module.NAME, help=module.HELP.replace("%", "%%"), description=module.HELP)
        module.add_arguments(verb)
        runners[module.NAME] = module.run
    return parser, runners


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser, runners = build_parser(_requested_verb(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    # Which interpreter and which clipxai ran this job (a venv, a conda env of envs/, the source tree): the first line
    # of every rule's log, so a result traces back to the code and environment that made it.
    logging.getLogger("clipxai").info("clipxai %s from %s, python %s", args.verb,
                                      Path(__file__).resolve().parent, sys.executable)
    try:
        return int(runners[args.verb](args) or 0)
    except InputError as err:
        print(f"clipxai {args.verb}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
