"""The whole demo DAG, run for real on a tiny config: shapes world -> tiny CLIP -> maps -> scores -> table -> report.

Run twice from scratch in two folders: the tables must be byte-identical (same config and seed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO

CONFIG = REPO / "tests" / "data" / "config_tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_workflow(workdir: Path, *extra: str, config: Path = CONFIG) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config), "--cores", "2", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)


# The second run rebuilds from scratch only what the compared tables need (data, training, maps, scores): the same
# determinism check at half the cost of a second full run.
COMPARED = ("results/tables/grounding.csv", "results/tables/grounding.md", "results/shapes/toy/zeroshot.csv",
            "results/shapes/toy/scores/grounding/chefer2021.csv")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    result = run_workflow(first)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    result = run_workflow(second, *COMPARED)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return first, second


def test_report_and_tables_written(two_runs):
    first = two_runs[0]
    html = (first / "results/report/index.html").read_text()
    table = pd.read_csv(first / "results/tables/grounding.csv")
    # every configured method x direction x mode has a row, with entries actually scored
    assert set(table["method"]) == {"chefer2021", "unimodal", "random"}
    assert set(table["direction"]) == {"t2i", "i2t"}
    assert set(table["mode"]) == {"faithful", "corrected"}
    assert (table["n_entries"] > 0).all()
    assert table["macro_lo"].le(table["macro_mean"]).all() and table["macro_mean"].le(table["macro_hi"]).all()
    # the report shows the numbers of this run's table, and the published ones beside them
    chefer = table[(table.method == "chefer2021") & (table.direction == "t2i") & (table["mode"] == "faithful")]
    assert f"{chefer['macro_mean'].iloc[0]:.4f}" in html
    assert "0.4917" in html  # published CLIP T2I, from src/clipxai/report/reported.yaml
    assert (first / "results/report/figures").is_dir()
    # the shapes world's binding table: every (model, method) split into the three colour subsets, in the report
    binding = pd.read_csv(first / "results/tables/grounding_binding.csv")
    assert set(binding["subset"]) == {"single object", "colour unique", "colour shared"}
    assert set(binding["method"]) == set(table["method"])
    assert "does the colour alone pick out the object?" in html
    for rule_log in (first / "logs").rglob("*.log"):
        assert rule_log.is_file()
    assert any((first / "benchmarks").rglob("*.tsv"))


def test_same_seed_gives_byte_identical_tables(two_runs):
    first, second = two_runs
    for rel in COMPARED:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_typo_in_config_stops_with_one_line_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.read_text().replace("n_train: 200", "n_trian: 200"))
    result = run_workflow(tmp_path, "-n", config=bad)
    output = result.stdout + result.stderr  # snakemake prints workflow errors on either stream, by version
    assert result.returncode != 0
    assert "invalid configuration: config: datasets.shapes.n_trian: expected a known key" in output
    assert "Traceback" not in output


def test_dry_run_lists_dag(tmp_path):
    result = run_workflow(tmp_path, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    for rule in ("make_shapes", "train_toy_clip", "ground", "score_grounding", "table_grounding", "report"):
        assert rule in result.stdout
