"""How Snakemake sees the configuration: overlays merge onto config.yaml, complete files stand alone, mistakes stop
`snakemake -n` with one line before any job, and parsing needs no installed clipxai (src/ is put on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def dry_run(workdir: Path, *extra: str, pythonpath: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([*SNAKEMAKE, "--directory", str(workdir), "-n", "-p", *extra], capture_output=True,
                          text=True, timeout=300, env=env)


def test_overlay_merges_onto_the_default_and_a_complete_file_stands_alone(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("seed: 7\ndatasets:\n  shapes: {n_val: 40}\n")
    result = dry_run(tmp_path / "run", "--configfile", str(overlay))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    make_shapes = next(line for line in result.stdout.splitlines() if "make-shapes --out resources/data/shapes "
                       in line)
    # the overlay's keys win, the default's others stay (n_train and held_out from config.yaml)
    assert "--seed 7" in make_shapes and "--n-val 40" in make_shapes and "--n-train 8000" in make_shapes
    assert "red star" in make_shapes
    # a complete file (every required top-level key) is not merged: none of the default's data sets remain
    complete = yaml.safe_load((REPO / "tests/data/config_tiny.yaml").read_text())
    required = yaml.safe_load((REPO / "src/clipxai/schemas/config.schema.yaml").read_text())["required"]
    assert set(required) <= set(complete)
    result = dry_run(tmp_path / "tiny", "--configfile", str(REPO / "tests/data/config_tiny.yaml"))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "resources/data/shapes_voc" not in result.stdout and "--n-train 200" in result.stdout


# One mistake of each kind of check (the schema's method table, then clipxai.workflow.checks section by section;
# tests/test_workflow_plan.py checks every message without Snakemake): the dry run prints exactly this line.
DRY_RUN_MISTAKES = {
    "misspelt method": ("grounding:\n  methods:\n    chefr2021: {start_layer: -1}\n",
                        "grounding.methods.chefr2021: expected a method name"),
    "saliency model": ("report: {saliency_models: [nope]}\n",
                       "invalid configuration: report.saliency_models: 'nope' is not a model under models"),
    "segmentation kind": ("segmentation: {datasets: [shapes]}\n",
                          "invalid configuration: segmentation.datasets: 'shapes' is not a data set of kind voc or "
                          "shapes-voc"),
    "waterbirds selection": ("heads: {waterbirds: {select_with: principal-faithful}}\n",
                             "invalid configuration: heads.waterbirds.select_with: expected the label of a textspan "
                             "algorithm under explain.algorithms"),
    "similarity study": ("similarity: {studies: {shapes: {dataset: shapes_voc}}}\n",
                         "invalid configuration: similarity.studies.shapes.dataset: a data set of kind shapes-imagenet "
                         "(single-object images)"),
}


@pytest.mark.parametrize("mistake", list(DRY_RUN_MISTAKES))
def test_a_config_mistake_stops_the_dry_run_with_one_line(tmp_path, mistake):
    text, expected = DRY_RUN_MISTAKES[mistake]
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(text)
    result = dry_run(tmp_path / "run", "--configfile", str(overlay))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    lines = [line for line in output.splitlines() if "invalid configuration" in line]
    assert len(lines) == 1 and expected in lines[0], output
    assert "Traceback" not in output and "Job stats" not in output


def test_parses_without_an_importable_clipxai(tmp_path):
    # A broken `clipxai` first on PYTHONPATH stands for "not installed / another version": the Snakefile must
    # still parse with its own src/.
    fake = tmp_path / "site" / "clipxai"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not this clipxai')\n")
    result = dry_run(tmp_path / "run", pythonpath=str(tmp_path / "site"))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "train_toy_clip" in result.stdout
