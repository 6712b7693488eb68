"""Atomic writers: complete-or-absent outputs, with the permissions a plain open() would give (the umask)."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipxai import io as cio
from clipxai.data.download import record_checksum


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_all(folder: Path) -> list[Path]:
    """One file through each writer of clipxai.io, and a checksum lock (written through them too)."""
    frame = pd.DataFrame({"method": ["gradcam", "chefer2021"], "score": [0.25, 0.5]})
    paths = [folder / "table.csv", folder / "page.html", folder / "record.json", folder / "maps.npz",
             folder / "checksums.lock.yaml"]
    cio.write_csv(paths[0], frame)
    cio.write_text(paths[1], "<html></html>\n")
    cio.write_json(paths[2], {"a": 1})
    cio.save_npz(paths[3], maps=np.zeros((2, 3), dtype=np.float32))
    record_checksum(paths[4], "png_coco_val2017", "a" * 64, 10)
    return paths


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_outputs_get_the_umask_mode(tmp_path, mask, expected):
    with umask(mask):
        paths = write_all(tmp_path / "results")
        with open(tmp_path / "plain.txt", "w") as fh:  # what any other program would have made
            fh.write("x")
    assert {p.name: mode(p) for p in paths} == {p.name: expected for p in paths}
    assert mode(tmp_path / "plain.txt") == expected
    # No temp file left beside the outputs (the checksum lock's guard file for flock is meant to stay).
    left = sorted(p.name for p in (tmp_path / "results").iterdir() if p.name != ".checksums.lock.yaml.flock")
    assert left == sorted(p.name for p in paths)


def test_rewriting_an_old_private_output_gives_the_umask_mode(tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("old\n")
    table.chmod(0o600)  # written by an earlier version (mkstemp's mode)
    with umask(0o022):
        cio.write_text(table, "new\n")
    assert mode(table) == 0o644 and table.read_text() == "new\n"


def test_umask_read_without_proc_and_left_unchanged(tmp_path, monkeypatch):
    real_open = open

    def no_proc(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(cio, "open", no_proc, raising=False)  # a system without /proc/self/status
    with umask(0o027):
        assert cio.current_umask() == 0o027
        assert cio.default_file_mode() == 0o640
        cio.write_text(tmp_path / "t.txt", "x")
        assert os.umask(0o027) == 0o027  # still the caller's umask afterwards
    assert mode(tmp_path / "t.txt") == 0o640


def test_failed_block_leaves_nothing(tmp_path):
    target = tmp_path / "table.csv"
    with pytest.raises(RuntimeError):
        with cio.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed half-way")
    assert list(tmp_path.iterdir()) == []
