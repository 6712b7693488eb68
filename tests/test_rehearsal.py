"""The paper path, rehearsed: the whole config/paper.yaml DAG runs end to end on a rehearsal mirror served on
127.0.0.1 (miniature copies of every real download in their real layouts, random weights of the real
architectures), from an empty results folder, as `make rehearsal` runs it.

Checks: the rehearsal ran every rule that `snakemake -n` of paper.yaml plans (the same set), every table and figure
the report collects is in results/report/index.html, the grounding table has T2I and I2T rows for every configured
method, partial tables are labelled as such, and a second run has nothing to do.

When it runs: about 20 minutes on 2 cores, so only where asked for: `pytest -m rehearsal`, this file named on the
command line, or CI=true (as the SLURM and resume tests).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml

from clipxai import attribution
from conftest import REPO

pytestmark = pytest.mark.rehearsal

PAPER = REPO / "config" / "paper.yaml"
REHEARSAL = REPO / "config" / "rehearsal.yaml"
RULE_LINE = re.compile(r"^(?:local)?rule (\w+):$", re.MULTILINE)
JOB_STATS_ROW = re.compile(r"^(\w+)\s+(\d+)$", re.MULTILINE)


def _requested(config: pytest.Config) -> bool:
    if os.environ.get("CI", "").lower() == "true":
        return True
    markexpr = config.getoption("markexpr") or ""
    if re.search(r"\brehearsal\b", markexpr) and not re.search(r"\bnot\s+rehearsal\b", markexpr):
        return True
    return any(Path(arg.split("::")[0]).name == Path(__file__).name for arg in config.args)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *_args):
        pass


def _snakemake(workdir: Path, sources: Path, *extra: str, timeout: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(PAPER), str(REHEARSAL), str(sources), "--cores", "2", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}  # nothing may come from the hub
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def planned_rules(output: str) -> set[str]:
    """Rule names of a dry run's "Job stats" table."""
    stats = output[output.index("Job stats:"):]
    stats = stats[:stats.index("\n\n", stats.index("-----"))]
    return {name for name, _ in JOB_STATS_ROW.findall(stats) if name != "total"}


@pytest.fixture(scope="module")
def rehearsal(request, tmp_path_factory):
    if not _requested(request.config):
        pytest.skip("the rehearsal runs only when asked for: `pytest -m rehearsal`, this file named, or CI=true")
    workdir = tmp_path_factory.mktemp("rehearsal")
    mirror = workdir / "resources" / "rehearsal"
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        started = time.monotonic()
        made = subprocess.run([sys.executable, "-m", "clipxai", "rehearsal-mirror", str(mirror), "--weights", "all",
                               "--base-url", base], capture_output=True, text=True, timeout=600)
        assert made.returncode == 0, made.stderr[-3000:]
        sources = mirror / "sources.yaml"
        result = _snakemake(workdir, sources, timeout=3000)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        elapsed = time.monotonic() - started
        again = _snakemake(workdir, sources, "-n", timeout=300)
    finally:
        server.shutdown()
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\nrehearsal of the paper DAG: mirror + {len(RULE_LINE.findall(output))} jobs in {elapsed:.0f} s")
    return workdir, output, again.stdout + again.stderr


def test_every_rule_of_the_paper_dag_ran(rehearsal):
    _, output, _ = rehearsal
    plan = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "-n",
                           "--configfile", str(PAPER), "--directory", str(REPO)], capture_output=True, text=True,
                          timeout=300)
    assert plan.returncode == 0, (plan.stdout + plan.stderr)[-3000:]
    assert set(RULE_LINE.findall(output)) == planned_rules(plan.stdout + plan.stderr)


def test_report_shows_every_table_and_figure(rehearsal):
    workdir, _, _ = rehearsal
    html = (workdir / "results" / "report" / "index.html").read_text()
    # the report's items are the tables and figures with a provenance sidecar (grounding_exclusions.csv is shown
    # inside the grounding layout)
    tables = sorted(p for p in (workdir / "results" / "tables").glob("*.csv") if p.with_suffix(".json").is_file())
    figures = sorted((workdir / "results" / "figures").glob("*.png"))
    assert len(tables) >= 10 and len(figures) >= 10
    for path in figures:
        assert path.with_suffix(".json").is_file(), f"{path.name} has no provenance sidecar"
    collected = {p.stem for p in tables + figures}
    shown = set(re.findall(r'id="(?:table|figure)-([^"]+)"', html))
    assert collected <= shown, sorted(collected - shown)
    for section in ("grounding", "saliency", "zero-shot", "inside the image tower", "segmentation", "similarity"):
        assert f'<h2 id="{section}">' in html, section
    for table in ("grounding", "zeroshot_classification", "heads_texts", "heads_accuracy", "imagenet_segmentation",
                  "waterbirds_heads", "segmentation_voc", "faithfulness"):
        assert f'id="table-{table}"' in html, table


def test_grounding_has_both_directions_for_every_method_and_partial_runs_are_labelled(rehearsal):
    workdir, _, _ = rehearsal
    methods = yaml.safe_load(PAPER.read_text())["grounding"]["methods"]
    text_maps = {name for name, spec in methods.items() if attribution.REGISTRY[spec.get("method", name)].maps_text}
    assert "dense" in set(methods) - text_maps  # image maps only: it has no I2T score
    table = pd.read_csv(workdir / "results" / "tables" / "grounding.csv")
    assert set(table.loc[table.direction == "t2i", "method"]) == set(methods)
    assert set(table.loc[table.direction == "i2t", "method"]) == text_maps
    # every entry of the miniature copy is in scope (`complete`: no max_entries), yet it is not the published split
    # of 44,008 entries: the report says so ("N of 44008 entries", below) and computes no difference
    assert table["complete"].all() and (table["n_dataset_entries"] < 44008).all()
    zeroshot = pd.read_csv(workdir / "results" / "tables" / "zeroshot_classification.csv")
    assert not zeroshot["complete"].any() and (zeroshot["n_split_images"] == 50000).all()
    faithfulness = pd.read_csv(workdir / "results" / "tables" / "faithfulness.csv")
    assert not faithfulness["complete"].any() and (faithfulness["n_entries"] + faithfulness["n_excluded"] <= 4).all()
    html = (workdir / "results" / "report" / "index.html").read_text()
    assert "This is the published setting" not in html
    assert re.search(r"[1-4] of 26 entries", html)  # faithfulness.max_entries: 4 of the mirror's PNG entries
    voc = pd.read_csv(workdir / "results" / "tables" / "segmentation_voc.csv")
    assert not voc["complete"].any() and (voc["n_split_images"] == 1449).all()  # the mirror's few VOC images
    assert re.search(r"\d+ of 1449 entries", html)
    assert re.search(r"\d+ of 44008 entries", html) and "6 of 50000 entries" in html


def test_second_run_has_nothing_to_do(rehearsal):
    _, _, again = rehearsal
    assert "Nothing to be done" in again, again[-3000:]
