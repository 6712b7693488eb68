"""The one ``clipxai`` command. Each verb is one stage of the workflow and mirrors one Snakemake rule.

A verb lives in ``clipxai.commands.<module>`` and defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Bad input surfaces as one line (``path: field: expected ...``) and exit status 2; any other
failure as one line too (exit 1), its traceback shown with ``--debug``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import logging
import sys
from pathlib import Path
from typing import Iterable

from clipxai.commands import COMMAND_MODULES
from clipxai.errors import InputError

_COMMANDS_DIR = Path(__file__).resolve().parent / "commands"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (argparse prints the whole usage first), and a single-valued
    option given twice is a usage mistake (argparse keeps the last silently; list options extend instead)."""

    verbs: dict[str, argparse.ArgumentParser] = {}  # the top-level parser's: verb name -> its parser

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        self.given: dict[str, tuple[str, object]] = {}  # dest -> (option string, value) seen in this parse
        return super().parse_known_args(args, namespace)


class _StoreOnce(argparse._StoreAction):
    """``store`` that refuses a second occurrence of its option: ``--max-images 4 --max-images 9`` is an error,
    not 9. Every single-valued option of every verb gets this class (:func:`_refuse_repeats`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(parser, "given", None)
        if given is not None and self.dest in given:
            first, value = given[self.dest]
            parser.error(f"argument {option_string}: given twice ({first} {value} and {option_string} {values}); "
                         "it takes one value")
        if given is not None:
            given[self.dest] = (option_string, values)
        super().__call__(parser, namespace, values, option_string)


def _refuse_repeats(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if type(action) is argparse._StoreAction and action.option_strings and action.nargs in (None, "?", 1):
            action.__class__ = _StoreOnce


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


def verb_help(module_name: str) -> str:
    """A verb's ``HELP``, read from its source without importing it: importing every verb (torch, open_clip,
    pandas, matplotlib) costs seconds, and ``clipxai --help`` or a job needs none of them but its own."""
    path = _COMMANDS_DIR / f"{module_name}.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "HELP" for t in node.targets):
                return ast.literal_eval(node.value)
    except (OSError, SyntaxError, ValueError):
        pass
    return importlib.import_module(f"clipxai.commands.{module_name}").HELP  # not a plain literal: import it


def build_parser(filled: Iterable[str] | None = None) -> tuple[argparse.ArgumentParser, dict]:
    """The parser of every verb, with the arguments (and runner) of the ``filled`` verb modules only (default:
    all). A job imports just the verb it runs; the others are listed by their help line."""
    filled = set(COMMAND_MODULES if filled is None else filled)
    parser = _Parser(prog="clipxai", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG, INFO, WARNING)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    _refuse_repeats(parser)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=_Parser)
    runners = {}
    for module_name in COMMAND_MODULES:
        name = module_name.replace("_", "-")
        help_line = verb_help(module_name)
        # argparse %-formats help strings: a literal "95% CI" in a verb's HELP must not break --help
        verb = sub.add_parser(name, help=help_line.replace("%", "%%"), description=help_line.replace("%", "%%"))
        if module_name in filled:
            module = importlib.import_module(f"clipxai.commands.{module_name}")
            module.add_arguments(verb)
            _refuse_repeats(verb)
            # also after the verb, where users type it; SUPPRESS keeps the top-level value when not given here
            verb.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                              help="show the traceback of an unexpected error")
            runners[module.NAME] = module.run
    parser.verbs = sub.choices
    return parser, runners


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return text if len(text) <= 300 else text[:297] + "..."


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    module_name = _requested_verb(argv)
    parser, runners = build_parser([module_name] if module_name else [])
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or a usage error already printed as one line
        return done.code if isinstance(done.code, int) else 0 if done.code is None else 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    prefix = f"clipxai {args.verb}: error:"
    try:
        from clipxai.commands._args import run_checks

        run_checks(parser.verbs[args.verb], args)  # file arguments, outputs included, before any compute
        # Which interpreter and which clipxai ran this job (a venv, a conda env of envs/, the source tree): the
        # first line of every rule's log, so a result traces back to the code and environment that made it.
        logging.getLogger("clipxai").info("clipxai %s from %s, python %s", args.verb,
                                          Path(__file__).resolve().parent, sys.executable)
        return int(runners[args.verb](args) or 0)
    except InputError as err:
        print(f"{prefix} {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug or the environment (disk, memory): one line, the traceback on request
        if args.debug:
            raise
        print(f"{prefix} unexpected {type(err).__name__}: {_one_line(err)} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
