"""Mirrors with their own checksums (issue 12): a config `sources:` entry gives a lab mirror's URL plus its
sha256/md5/size, or says `checksum: none`; the download verifies against what the entry gives."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from clipxai.config import load_schema, validate
from clipxai.data import sources
from clipxai.errors import InputError
from httpfixture import FixtureServer, Route

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server():
    srv = FixtureServer(hard_timeout=60.0).start()
    yield srv
    srv.stop()


def _repacked_voc() -> bytes:
    """A tar that is not the real VOC (so the catalogue's md5 cannot match): what a lab's partial copy is."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = b"2007_000033\n"
        info = tarfile.TarInfo("VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _download(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clipxai", "download", *args, "--no-progress", "--retries", "0"],
                          cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})


def test_config_accepts_string_and_mapping_entries_and_refuses_others():
    schema = load_schema(REPO / "src/clipxai/schemas/config.schema.yaml")
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    ok = {"a": "http://mirror/val2017.zip", "b": {"url": "http://m/x", "sha256": "a" * 64, "size": 3},
          "c": {"url": "http://m/y", "checksum": "none"}}
    validate({**base, "sources": ok}, schema)
    for bad in ({"url": "http://m/x", "sha256": "xyz"}, {"sha256": "a" * 64}, {"url": "u", "checksum": "skip"},
                {"url": "u", "mirror": True}):
        with pytest.raises(InputError, match="sources"):
            validate({**base, "sources": {"a": bad}}, schema)


def test_download_arguments_require_a_checksum_or_checksum_none():
    assert sources.download_arguments("voc2012_trainval", None) == []
    assert sources.download_arguments("voc2012_trainval", "/m/v.tar") == ["--url", "/m/v.tar"]
    assert sources.download_arguments("voc2012_trainval", {"url": "u", "sha256": "a" * 64, "size": 7}) == \
        ["--url", "u", "--sha256", "a" * 64, "--size", "7"]
    assert sources.download_arguments("voc2012_trainval", {"url": "u", "checksum": "none"}) == \
        ["--url", "u", "--no-checksum"]
    with pytest.raises(InputError, match=r"voc2012_trainval: expected sha256, md5 or size .*checksum: none"):
        sources.download_arguments("voc2012_trainval", {"url": "u"})
    with pytest.raises(InputError, match="either"):
        sources.download_arguments("voc2012_trainval", {"url": "u", "md5": "b" * 32, "checksum": "none"})


def test_mirror_checksums_replace_the_catalogues():
    mirror = sources.resolve("voc2012_trainval", {"voc2012_trainval": {"url": "u", "sha256": "c" * 64}})
    assert (mirror.sha256, mirror.md5, mirror.size, mirror.unverified) == ("c" * 64, None, None, False)
    same_bytes = sources.resolve("voc2012_trainval", {"voc2012_trainval": "u"})
    assert same_bytes.md5 == sources.get("voc2012_trainval").md5
    unverified = sources.resolve("png_coco_val2017", {"png_coco_val2017": {"url": "u", "checksum": "none"}})
    assert unverified.unverified and not unverified.record_checksum and unverified.sha256 is None


def test_wrong_mirror_checksum_stops_with_one_line_and_leaves_no_file(server, tmp_path):
    data = _repacked_voc()
    server.routes["/VOCtrainval_11-May-2012.tar"] = Route(data)
    url = server.url("/VOCtrainval_11-May-2012.tar")
    dest = tmp_path / "downloads" / "VOCtrainval_11-May-2012.tar"
    wrong = "0" * 64
    actual = hashlib.sha256(data).hexdigest()
    result = _download("voc2012_trainval", "--url", url, "--sha256", wrong, "--dest", str(dest),
                       "--extract-to", str(tmp_path / "voc"), "--stamp", str(tmp_path / "stamp.json"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and url in errors[0] and wrong in errors[0] and actual in errors[0], result.stderr
    assert not dest.exists() and not list(dest.parent.glob("*.part")) and not (tmp_path / "stamp.json").exists()
    assert not (tmp_path / "voc").exists()
    # the catalogue's md5 cannot match a re-packed copy either: a plain URL override fails the same way
    result = _download("voc2012_trainval", "--url", url, "--dest", str(dest), cwd=tmp_path)
    assert result.returncode == 2 and "md5" in result.stderr and not dest.exists()
    # the right checksum, or an explicit --no-checksum, downloads it; the stamp says which
    result = _download("voc2012_trainval", "--url", url, "--sha256", actual, "--dest", str(dest),
                       "--stamp", str(tmp_path / "stamp.json"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert dest.read_bytes() == data and '"checksum": "verified"' in (tmp_path / "stamp.json").read_text()
    other = tmp_path / "other.tar"
    result = _download("voc2012_trainval", "--url", url, "--no-checksum", "--dest", str(other),
                       "--stamp", str(tmp_path / "unverified.json"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"checksum": "none"' in (tmp_path / "unverified.json").read_text()
