"""The one `clipxai` command: every verb module imports and registers; bad input is one line, exit 2."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from clipxai.cli import build_parser, main, verb_help
from clipxai.commands import COMMAND_MODULES


@pytest.mark.parametrize("module_name", COMMAND_MODULES)
def test_verb_module_has_the_verb_interface(module_name):
    module = importlib.import_module(f"clipxai.commands.{module_name}")
    assert module.NAME == module_name.replace("_", "-")
    assert module.HELP and callable(module.add_arguments) and callable(module.run)
    assert verb_help(module_name) == module.HELP  # what `clipxai --help` shows without importing the verb


def test_every_verb_is_reachable():
    _, runners = build_parser()
    assert set(runners) == {m.replace("_", "-") for m in COMMAND_MODULES}


def test_input_error_is_one_line_and_exit_2(tmp_path, capsys):
    status = main(["ground", "--data", str(tmp_path / "missing"), "--model", "no-such-model",
                   "--method", "chefer2021", "--out", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("clipxai ground: error: ")
    assert not (tmp_path / "x.npz").exists()


def test_console_script_help_runs():
    result = subprocess.run([sys.executable, "-m", "clipxai.cli", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "make-shapes" in result.stdout and "report" in result.stdout


def test_help_imports_no_verb_and_a_run_only_its_own():
    code = ("import sys; from clipxai.cli import main; assert main(['--help']) == 0; "
            "assert 'torch' not in sys.modules and not any(m.startswith('clipxai.commands.') and m != "
            "'clipxai.commands._args' for m in sys.modules), sorted(sys.modules); "
            "assert main(['text-pool', '--help']) == 0; "
            "assert [m for m in sys.modules if m.startswith('clipxai.commands.') and m != 'clipxai.commands._args']"
            " == ['clipxai.commands.text_pool']")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("argv", [["--text", "a", "--text", "b"], ["--text", "a", "b"]])
def test_repeated_and_listed_values_both_count(argv):
    parser, _ = build_parser(["attribute"])
    args = parser.parse_args(["attribute", "--model", "m", "--method", "random", "--image", "x.png", "--image",
                              "y.png", "--out", "o.npz", *argv])
    assert args.text == ["a", "b"] and args.image == ["x.png", "y.png"]


def _list_options():
    parser, _ = build_parser()
    for verb, sub in sorted(parser.verbs.items()):
        for action in sub._actions:
            if action.option_strings and action.nargs in ("+", "*"):
                yield verb, action


LIST_OPTIONS = list(_list_options())


@pytest.mark.parametrize("verb, action", LIST_OPTIONS, ids=[f"{v}:{a.option_strings[-1]}" for v, a in LIST_OPTIONS])
def test_every_list_option_extends(verb, action):
    """--x a --x b == --x a b == [a, b] (argparse's default kept only the last), for every verb's list options."""
    parser, _ = build_parser([verb.replace("-", "_")])
    sub = parser.verbs[verb]
    for other in sub._actions:  # parse this option alone
        other.required = False
    a, b = (list(action.choices)[:2] if action.choices else ["a", "b"])
    flag = action.option_strings[-1]
    assert sub.parse_known_args([flag, a, flag, b])[0].__dict__[action.dest] == [a, b]
    assert sub.parse_known_args([flag, a, b])[0].__dict__[action.dest] == [a, b]


def test_list_options_found_in_many_verbs():
    assert len({verb for verb, _ in LIST_OPTIONS}) >= 15


def test_unexpected_error_is_one_line_and_debug_shows_it(tmp_path, capsys, monkeypatch):
    from clipxai.commands import text_pool

    def broken(args):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(text_pool, "run", broken)
    assert main(["text-pool", "--out", str(tmp_path / "t.txt")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["clipxai text-pool: error: unexpected ZeroDivisionError: division by zero "
                     "(run with --debug for the traceback)"]
    with pytest.raises(ZeroDivisionError):
        main(["text-pool", "--out", str(tmp_path / "t.txt"), "--debug"])
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "text-pool", "--out", str(tmp_path / "t.txt")])


def _single_options():
    parser, _ = build_parser()
    for verb, sub in sorted(parser.verbs.items()):
        for action in sub._actions:
            if action.option_strings and action.nargs is None and isinstance(action, argparse._StoreAction):
                yield verb, action


SINGLE_OPTIONS = list(_single_options())


def _two_values(action) -> tuple[str, str]:
    if action.choices:
        choices = [str(c) for c in action.choices]
        return choices[0], choices[-1]
    try:  # numbers where the option's type takes them (int, float, a non-negative count), words otherwise
        if action.type is not None:
            action.type("1"), action.type("2")
        return "1", "2"
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        return "a", "b"


@pytest.mark.parametrize("verb, action", SINGLE_OPTIONS,
                         ids=[f"{v}:{a.option_strings[-1]}" for v, a in SINGLE_OPTIONS])
def test_every_single_valued_option_given_twice_is_refused(verb, action, capsys):
    """--x 1 --x 2 is a one-line usage error naming the option and both values, for every verb's single-valued
    options (argparse alone keeps the last, silently)."""
    parser, _ = build_parser([verb.replace("-", "_")])
    flag = action.option_strings[-1]
    a, b = _two_values(action)
    with pytest.raises(SystemExit) as done:
        parser.parse_args([verb, flag, a, flag, b])
    err = capsys.readouterr().err
    assert done.value.code == 2 and len(err.strip().splitlines()) == 1
    assert f"argument {flag}: given twice" in err and f"{flag} {b}" in err
    # once is still fine (this option parsed alone)
    for other in parser.verbs[verb]._actions:
        other.required = False
    for group in parser.verbs[verb]._mutually_exclusive_groups:
        group.required = False
    parsed, _ = parser.verbs[verb].parse_known_args([flag, a])
    assert getattr(parsed, action.dest) is not None


def test_single_valued_options_found_in_every_verb_with_options():
    assert len(SINGLE_OPTIONS) >= 60 and len({verb for verb, _ in SINGLE_OPTIONS}) >= 30
    parser, _ = build_parser([])
    with pytest.raises(SystemExit):
        parser.parse_args(["--log-level", "INFO", "--log-level", "DEBUG", "report"])
