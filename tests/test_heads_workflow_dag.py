"""rules/heads.smk as a DAG: the paper configuration lists the heads jobs without network access, and a heads
section that names something undefined stops the workflow with one line naming the key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO


def dry_run(workdir: Path, config: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config), "--workflow-profile", "none", "-n", "-p", "--cores", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def job_counts(stdout: str) -> dict[str, int]:
    block = stdout.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, flags=re.M)}


def test_paper_config_lists_the_heads_jobs(tmp_path):
    config = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    heads, datasets = config["heads"], config["datasets"]
    result = dry_run(tmp_path, REPO / "config/paper.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout)
    models = len(heads["models"])
    assert models == 3
    explain = sum(datasets[d]["shards"] for d in heads["explain"]["datasets"])
    waterbirds = sum(2 * datasets[d]["shards"] for d in heads["waterbirds"]["datasets"])  # test + val
    assert counts["decompose_dataset"] == models * (explain + waterbirds)
    assert counts["explain_heads"] == models * len(heads["explain"]["algorithms"])
    seg = heads["segmentation"]
    # one job per (data set, model, shard) maps every method (rules/heads.smk)
    assert len(seg["methods"]) > 1
    assert counts["segment_imagenet"] == models * sum(datasets[d]["shards"] for d in seg["datasets"])
    assert counts["download_text_pool"] == len(heads["text_pools"])
    for rule in ("download_imagenet_seg", "download_waterbirds", "table_heads", "table_imagenet_seg",
                 "table_waterbirds", "figure_neighbours", "waterbirds_ablation", "select_heads"):
        assert counts.get(rule, 0) >= 1, rule
    # the decomposition runs the published weights
    assert "decompose-dataset" in result.stdout and "--model ViT-H-14 --pretrained laion2b_s32b_b79k" in result.stdout


def test_heads_config_naming_an_undefined_pool_stops_with_one_line(tmp_path):
    config = yaml.safe_load((REPO / "tests/data/config_tiny.yaml").read_text())
    config["heads"]["explain"]["algorithms"]["textspan"]["pool"] = "nowhere"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = dry_run(tmp_path, bad)
    output = result.stdout + result.stderr  # snakemake prints a WorkflowError on stdout
    assert result.returncode != 0
    assert ("invalid configuration: heads.explain.algorithms.textspan.pool: expected a pool under "
            "heads.text_pools") in output
    assert "Traceback" not in output
