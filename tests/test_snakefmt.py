"""The rules keep Snakemake's standard formatting: `snakefmt --check .` (pinned in the test extras) passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_snakefmt_check_passes():
    snakefmt = shutil.which("snakefmt", path=str(Path(sys.executable).parent)) or shutil.which("snakefmt")
    assert snakefmt, "snakefmt is not installed: pip install -e '.[test]'"
    result = subprocess.run([snakefmt, "--check", "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
