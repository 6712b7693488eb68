"""The one `clipxai` command: every verb module imports and registers; bad input is one line, exit 2."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from clipxai.cli import build_parser, main
from clipxai.commands import COMMAND_MODULES


@pytest.mark.parametrize("module_name", COMMAND_MODULES)
def test_verb_module_has_the_verb_interface(module_name):
    module = importlib.import_module(f"clipxai.commands.{module_name}")
    assert module.NAME == module_name.replace("_", "-")
    assert module.HELP and callable(module.add_arguments) and callable(module.run)


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
