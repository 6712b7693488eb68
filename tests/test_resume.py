"""An interrupted run resumes to the same tables: SIGTERM to Snakemake's process group while the model trains,
run again (profiles/default: rerun-incomplete), and the grounding table is byte-identical to an uninterrupted run.

When it runs: three small workflow runs take minutes on a 2-core machine, so only where asked for: `pytest -m
resume`, this file named on the command line, or CI=true (as the SLURM test).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.resume

TABLES = ("results/tables/grounding.csv", "results/shapes/toy/scores/grounding/chefer2021.csv")
CONFIG = """\
seed: 3
threads: 1
device: cpu
batch_size: 16
datasets:
  shapes: {kind: shapes, image_size: 32, n_train: 64, n_val: 8, held_out: ["red star"], shards: 1}
models:
  toy:
    kind: toy
    train_on: shapes
    steps: 60
    batch_size: 16
    architecture: {image_size: 32, patch_size: 8, width: 32, layers: 2, head_width: 16, text_width: 32,
                   text_layers: 1, text_heads: 2, embed_dim: 32}
grounding:
  datasets: [shapes]
  models: [toy]
  methods: {chefer2021: {start_layer: -1}, random: {}}
  modes: [faithful]
  bootstrap: 100
"""


def _requested(config: pytest.Config) -> bool:
    if os.environ.get("CI", "").lower() == "true":
        return True
    markexpr = config.getoption("markexpr") or ""
    if re.search(r"\bresume\b", markexpr) and not re.search(r"\bnot\s+resume\b", markexpr):
        return True
    return any(Path(arg.split("::")[0]).name == Path(__file__).name for arg in config.args)


def _command(workdir: Path, config: Path) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(config), "--cores", "2", *TABLES]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_sigterm_to_the_process_group_then_rerun_gives_identical_tables(request, tmp_path):
    if not _requested(request.config):
        pytest.skip("resume test runs only when asked for: `pytest -m resume`, this file named, or CI=true")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    result = subprocess.run(_command(reference, config), capture_output=True, text=True, timeout=900, env=_env())
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    # the documented stop: SIGTERM to the whole group, once the training job runs
    log = resumed / "logs" / "train_toy_clip" / "toy.log"
    weights = resumed / "resources" / "models" / "toy" / "open_clip_model.safetensors"
    with open(tmp_path / "interrupted.txt", "w") as out:
        run = subprocess.Popen(_command(resumed, config), stdout=out, stderr=subprocess.STDOUT, env=_env(),
                               start_new_session=True)
        deadline = time.monotonic() + 600
        while not log.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert log.exists() and run.poll() is None, (tmp_path / "interrupted.txt").read_text()[-3000:]
        time.sleep(2)
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(timeout=120)
    interrupted = (tmp_path / "interrupted.txt").read_text()
    assert run.returncode != 0, interrupted[-3000:]
    assert not weights.exists(), "the training job finished before the signal: nothing was interrupted"

    result = subprocess.run(_command(resumed, config), capture_output=True, text=True, timeout=900, env=_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "train_toy_clip" in output and weights.exists()
    for rel in TABLES:
        assert (resumed / rel).read_bytes() == (reference / rel).read_bytes(), rel
