"""`snakemake --report report.zip` works on the workflow's declarations: the report folder (htmlindex), the tables and
figures flagged with report() and their captions end up in Snakemake's own report.

Fast: the files flagged for the report are stand-ins made here (Snakemake's report needs them to exist, not to be
fresh); tests/test_workflow_e2e.py runs the real DAG. A flagged file this test does not know (a table or figure
another rule file adds) is made as a stand-in too, from Snakemake's own message naming it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image

from conftest import REPO

CONFIG = REPO / "tests" / "data" / "config_tiny.yaml"
MISSING = re.compile(r"File (\S+) marked for report but does not exist")


def _stand_in(root: Path, relative: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        Image.new("RGB", (8, 8), (0, 128, 255)).save(path)
    elif path.suffix == ".csv":
        path.write_text("name,value\nstand-in,1\n")
    elif path.suffix == "":  # a directory output: the report folder
        path.mkdir(exist_ok=True)
        (path / "index.html").write_text("<!doctype html><title>clipxai report</title><p>stand-in report</p>\n")
        (path / "figures").mkdir(exist_ok=True)
        Image.new("RGB", (8, 8)).save(path / "figures" / "a.png")
    else:
        path.write_text("stand-in\n")


def _report(root: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(root),
           "--configfile", str(CONFIG), "--cores", "1", "--workflow-profile", "none", "--report", "report.zip"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_snakemake_report_holds_the_report_folder_tables_and_figures(tmp_path):
    known = ["results/tables/grounding.csv", "results/tables/grounding_exclusions.csv",
             "results/tables/zeroshot_shapes.csv",
             "results/figures/grounding_bars.png", "results/figures/grounding_examples_shapes_toy.png",
             *[f"results/figures/saliency_{kind}_shapes_toy.png" for kind in ("layers", "methods", "polarity",
                                                                              "perword")],
             "results/report"]
    for relative in known:
        _stand_in(tmp_path, relative)
    for _ in range(20):  # flagged files of other rule files: stand-ins too, one Snakemake message at a time
        result = _report(tmp_path)
        missing = MISSING.search(result.stderr + result.stdout)
        if result.returncode == 0 or not missing:
            break
        _stand_in(tmp_path, missing.group(1))
    assert result.returncode == 0, result.stderr[-3000:]
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        names = archive.namelist()
        page = archive.read(next(n for n in names if n.endswith("/report.html"))).decode()
        index = [n for n in names if n.endswith("/index.html")]
        assert index and b"stand-in report" in archive.read(index[0])  # the folder, htmlindex=index.html
        assert any(n.endswith("/figures/a.png") for n in names)          # with its figures beside it
    for relative in known[:-1]:
        assert any(n.endswith("/" + Path(relative).name) for n in names), relative
    # categories and the captions of report/snakemake/*.rst
    for text in ("Report", "Tables", "Figures", "Cross-modal grounding (CLIP-grounding protocol)",
                 "reproduced beside published numbers"):
        assert text in page, text
