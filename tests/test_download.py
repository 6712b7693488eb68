"""Verified, atomic, resumable downloads against a local HTTP server; safe extraction; the two CLI verbs."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from clipxai import cli
from clipxai.data import sources
from clipxai.data.download import (ArchiveError, DownloadError, download, extract, record_checksum,
                                   recorded_checksum, sniff)
from clipxai.errors import InputError
from clipxai.seeding import rng
from httpfixture import FixtureServer, Route

FAST = dict(retries=3, backoff=0.01, timeout=5.0, progress=False)


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def server():
    srv = FixtureServer(hard_timeout=60.0).start()
    yield srv
    srv.stop()


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_gz_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def panoptic_zip() -> bytes:
    """COCO's layout in small: a zip with the val json and a zip of PNGs inside, plus a train zip not wanted."""
    noise = rng(0, "download-test").integers(0, 256, size=120_000, dtype="uint8").tobytes()  # incompressible
    inner_val = _zip_bytes({"panoptic_val2017/000000000139.png": b"\x89PNG fake 139",
                            "panoptic_val2017/000000000285.png": noise})
    inner_train = _zip_bytes({"panoptic_train2017/000000000009.png": b"\x89PNG fake 9"})
    return _zip_bytes({"annotations/panoptic_val2017.json": b'{"images": []}',
                       "annotations/panoptic_val2017.zip": inner_val,
                       "annotations/panoptic_train2017.zip": inner_train})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def no_output(dest: Path) -> bool:
    """Neither the file nor a leftover .part exists."""
    return not dest.exists() and not dest.with_name(dest.name + ".part").exists()


# ---------------------------------------------------------------------------------------------- download


def test_success_verifies_and_leaves_no_part(server, panoptic_zip, tmp_path):
    server.routes["/a.zip"] = Route(panoptic_zip)
    dest = tmp_path / "out" / "a.zip"
    got = download(server.url("/a.zip"), dest, size=len(panoptic_zip), sha256=sha256(panoptic_zip),
                   expect="zip", **FAST)
    assert got == dest and dest.read_bytes() == panoptic_zip
    assert not dest.with_name("a.zip.part").exists()
    # A second call finds the verified file and does not fetch again.
    download(server.url("/a.zip"), dest, sha256=sha256(panoptic_zip), expect="zip", **FAST)
    assert len(server.requests_for("/a.zip")) == 1


def test_resume_after_cut_connection_sends_range(server, panoptic_zip, tmp_path):
    server.routes["/a.zip"] = Route(panoptic_zip, cut_after=40_000)
    dest = tmp_path / "a.zip"
    download(server.url("/a.zip"), dest, size=len(panoptic_zip), sha256=sha256(panoptic_zip), expect="zip",
             **FAST)
    assert dest.read_bytes() == panoptic_zip
    first, second = server.requests_for("/a.zip")
    assert first.range is None
    assert second.range == "bytes=40000-" and second.status == 206


def test_server_ignoring_range_restarts_cleanly(server, panoptic_zip, tmp_path):
    server.routes["/a.zip"] = Route(panoptic_zip, honour_range=False)
    dest = tmp_path / "a.zip"
    dest.with_name("a.zip.part").write_bytes(panoptic_zip[:30_000])  # an earlier run was killed here
    download(server.url("/a.zip"), dest, sha256=sha256(panoptic_zip), expect="zip", **FAST)
    assert dest.read_bytes() == panoptic_zip  # the prefix was not duplicated
    (request,) = server.requests_for("/a.zip")
    assert request.range == "bytes=30000-" and request.status == 200


def test_stale_prefix_part_is_resumed(server, panoptic_zip, tmp_path):
    server.routes["/a.zip"] = Route(panoptic_zip)
    dest = tmp_path / "a.zip"
    dest.with_name("a.zip.part").write_bytes(panoptic_zip[:12_345])
    download(server.url("/a.zip"), dest, sha256=sha256(panoptic_zip), expect="zip", **FAST)
    assert dest.read_bytes() == panoptic_zip
    assert [r.range for r in server.requests_for("/a.zip")] == ["bytes=12345-"]


def test_stale_part_that_fails_verification_is_discarded(server, panoptic_zip, tmp_path):
    server.routes["/a.zip"] = Route(panoptic_zip)
    dest = tmp_path / "a.zip"
    part = dest.with_name("a.zip.part")
    part.write_bytes(b"PK\x03\x04" + b"\0" * 996)  # looks like a zip start but is not this file's prefix
    with pytest.raises(DownloadError, match="sha256"):
        download(server.url("/a.zip"), dest, sha256=sha256(panoptic_zip), expect="zip", **FAST)
    assert no_output(dest)
    # The next run starts from scratch (no Range) and succeeds.
    download(server.url("/a.zip"), dest, sha256=sha256(panoptic_zip), expect="zip", **FAST)
    assert dest.read_bytes() == panoptic_zip
    assert [r.range for r in server.requests_for("/a.zip")] == ["bytes=1000-", None]


def test_complete_part_with_unknown_size_is_verified_not_refetched(server, panoptic_zip, tmp_path):
    server.routes["/a.zip"] = Route(panoptic_zip)
    dest = tmp_path / "a.zip"
    dest.with_name("a.zip.part").write_bytes(panoptic_zip)  # killed between the last byte and the rename
    download(server.url("/a.zip"), dest, sha256=sha256(panoptic_zip), expect="zip", **FAST)
    assert dest.read_bytes() == panoptic_zip
    assert [(r.range, r.status) for r in server.requests_for("/a.zip")] == [(f"bytes={len(panoptic_zip)}-", 416)]


def test_wrong_checksum_fails_and_is_not_resumed_later(server, panoptic_zip, tmp_path):
    wrong = bytearray(panoptic_zip)
    wrong[-100] ^= 0xFF  # same size, one byte differs: only the checksum can tell
    server.routes["/a.zip"] = Route(bytes(wrong))
    dest = tmp_path / "a.zip"
    with pytest.raises(DownloadError) as info:
        download(server.url("/a.zip"), dest, size=len(panoptic_zip), sha256=sha256(panoptic_zip), expect="zip",
                 **FAST)
    message = str(info.value)
    assert server.url("/a.zip") in message and "sha256" in message and sha256(bytes(wrong)) in message
    assert "\n" not in message
    assert no_output(dest)
    server.routes["/a.zip"] = Route(panoptic_zip)
    download(server.url("/a.zip"), dest, sha256=sha256(panoptic_zip), expect="zip", **FAST)
    assert server.requests_for("/a.zip")[-1].range is None  # fresh start, nothing resumed
    assert dest.read_bytes() == panoptic_zip


def test_md5_mismatch_is_reported(server, tmp_path):
    server.routes["/v.tar"] = Route(b"x" * 600)
    dest = tmp_path / "v.bin"
    with pytest.raises(DownloadError, match="md5: expected 6cd6e144f989b92b3379bac3b3de84fd, got "):
        download(server.url("/v.tar"), dest, md5="6cd6e144f989b92b3379bac3b3de84fd", **FAST)
    assert no_output(dest)


def test_404_fails_at_once_without_retries(server, tmp_path):
    dest = tmp_path / "missing.zip"
    with pytest.raises(DownloadError, match="HTTP status: expected 200 OK, got 404"):
        download(server.url("/missing.zip"), dest, expect="zip", **FAST)
    assert len(server.requests_for("/missing.zip")) == 1
    assert no_output(dest)


def test_html_page_instead_of_zip(server, tmp_path):
    page = b"<!DOCTYPE html>\n<html><body>Please log in</body></html>\n"
    server.routes["/a.zip"] = Route(page, content_type="text/html")
    dest = tmp_path / "a.zip"
    with pytest.raises(DownloadError, match="content: expected a zip archive, got an HTML page"):
        download(server.url("/a.zip"), dest, expect="zip", **FAST)
    assert no_output(dest)
    # With a known size the HTML page is still reported as what it is, not as a size mismatch.
    with pytest.raises(DownloadError, match="got an HTML page"):
        download(server.url("/a.zip"), dest, size=815_585_330, expect="zip", **FAST)
    assert no_output(dest)


def test_wrong_announced_size_fails_before_downloading(server, panoptic_zip, tmp_path):
    server.routes["/a.zip"] = Route(panoptic_zip)
    dest = tmp_path / "a.zip"
    with pytest.raises(DownloadError, match=f"size: expected 999 bytes, got a server announcing {len(panoptic_zip)}"):
        download(server.url("/a.zip"), dest, size=999, expect="zip", **FAST)
    assert no_output(dest)
    # A stale .part of another version of the file is dropped as soon as the server's size disagrees.
    dest.with_name("a.zip.part").write_bytes(panoptic_zip[:100])
    with pytest.raises(DownloadError, match="server announcing"):
        download(server.url("/a.zip"), dest, size=len(panoptic_zip) + 1, expect="zip", **FAST)
    assert server.requests_for("/a.zip")[-1].range == "bytes=100-"
    assert no_output(dest)


def test_5xx_is_retried_then_succeeds(server, panoptic_zip, tmp_path):
    server.routes["/a.zip"] = Route(panoptic_zip, fail_times=2, fail_status=503)
    dest = tmp_path / "a.zip"
    download(server.url("/a.zip"), dest, sha256=sha256(panoptic_zip), **FAST)
    assert [r.status for r in server.requests_for("/a.zip")] == [503, 503, 200]
    assert dest.read_bytes() == panoptic_zip


def test_persistent_5xx_gives_up_after_retries(server, tmp_path):
    server.routes["/a.zip"] = Route(b"PK\x03\x04", fail_times=100, fail_status=502)
    dest = tmp_path / "a.zip"
    with pytest.raises(DownloadError, match="transfer: expected a complete transfer, got HTTP 502"):
        download(server.url("/a.zip"), dest, **FAST)
    assert len(server.requests_for("/a.zip")) == FAST["retries"] + 1
    assert not dest.exists()


def test_repeated_cuts_without_progress_give_up_but_keep_the_prefix(server, panoptic_zip, tmp_path):
    # A server that drops every connection after 1,000 bytes and cannot resume: no attempt makes progress.
    server.routes["/a.zip"] = Route(panoptic_zip, cut_after=1_000, cut_times=100, honour_range=False)
    dest = tmp_path / "a.zip"
    with pytest.raises(DownloadError, match="run again to resume"):
        download(server.url("/a.zip"), dest, sha256=sha256(panoptic_zip), expect="zip", **FAST)
    assert not dest.exists()
    # The prefix is kept on purpose: it is correct so far, and a later run (or a better mirror) resumes it.
    assert dest.with_name("a.zip.part").read_bytes() == panoptic_zip[:1_000]
    assert len(server.requests_for("/a.zip")) == 1 + FAST["retries"] + 1


def test_local_path_and_file_url(panoptic_zip, tmp_path):
    mirror = tmp_path / "mirror" / "val2017.zip"
    mirror.parent.mkdir()
    mirror.write_bytes(panoptic_zip)
    for i, url in enumerate([str(mirror), mirror.as_uri()]):
        dest = tmp_path / f"copy{i}.zip"
        download(url, dest, size=len(panoptic_zip), sha256=sha256(panoptic_zip), expect="zip", **FAST)
        assert dest.read_bytes() == panoptic_zip
    with pytest.raises(DownloadError, match="local file: expected an existing regular file"):
        download(str(tmp_path / "nope.zip"), tmp_path / "x.zip", **FAST)
    with pytest.raises(DownloadError, match="sha256"):
        download(str(mirror), tmp_path / "bad.zip", sha256="0" * 64, **FAST)
    assert no_output(tmp_path / "bad.zip")


def test_checksum_recorded_at_first_download_then_enforced(server, tmp_path):
    lock = tmp_path / "config" / "checksums.lock.yaml"
    original = b'[{"image_id": 139, "caption": "a cat", "segments": []}]'
    server.routes["/png.json"] = Route(original)
    first = tmp_path / "a" / "png_coco_val2017.json"
    download(server.url("/png.json"), first, expect="json", checksum_lock=lock, checksum_key="png_coco_val2017",
             **FAST)
    assert recorded_checksum(lock, "png_coco_val2017") == {"sha256": sha256(original), "size": len(original)}
    assert yaml.safe_load(lock.read_text())["png_coco_val2017"]["sha256"] == sha256(original)
    # Upstream (or a mirror) now serves different bytes: the recorded checksum refuses them.
    server.routes["/png.json"] = Route(original.replace(b"cat", b"dog"))
    second = tmp_path / "b" / "png_coco_val2017.json"
    with pytest.raises(DownloadError, match="sha256: expected " + sha256(original)):
        download(server.url("/png.json"), second, expect="json", checksum_lock=lock,
                 checksum_key="png_coco_val2017", **FAST)
    assert no_output(second)
    assert recorded_checksum(lock, "png_coco_val2017")["sha256"] == sha256(original)  # record unchanged
    with pytest.raises(InputError, match="recorded earlier"):
        record_checksum(lock, "png_coco_val2017", "f" * 64, 1)


def test_sniff_kinds():
    hdf5_mat = b"MATLAB 7.3 MAT-file".ljust(512, b" ") + b"\x89HDF\r\n\x1a\n"
    tar_head = b"x" * 257 + b"ustar\x0000"
    assert sniff(hdf5_mat, "mat") is None
    assert sniff(b"\x89HDF\r\n\x1a\n", "mat") is None
    assert sniff(tar_head, "tar") is None
    assert sniff(b"\x1f\x8b\x08", "gz") is None
    assert sniff(b'\xef\xbb\xbf [{"a": 1}]', "json") is None
    assert sniff(b"a photo of a dog\n", "text") is None
    assert sniff(b"PK\x03\x04...", "torch") is None
    assert sniff(b"  <html><body>404</body></html>", "json") == "an HTML page"
    assert sniff(b"PK\x03\x04", "gz") is not None
    assert sniff(b"\x00\x01", "text") is not None
    assert sniff(b"", "zip") == "an empty file"


# ---------------------------------------------------------------------------------------------- extraction


def test_extract_nested_zip_into_existing_root(panoptic_zip, tmp_path):
    archive = tmp_path / "panoptic_annotations_trainval2017.zip"
    archive.write_bytes(panoptic_zip)
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "png_coco_val2017.json").write_text("[]")  # fetched earlier: must survive
    members = sources.get("coco_panoptic_annotations").members
    extract(archive, root, members, nested=True)
    ann = root / "annotations"
    assert (ann / "panoptic_val2017.json").read_bytes() == b'{"images": []}'
    assert (ann / "panoptic_val2017" / "000000000139.png").read_bytes() == b"\x89PNG fake 139"
    assert (ann / "panoptic_val2017" / "000000000285.png").stat().st_size == 120_000
    assert not (ann / "panoptic_val2017.zip").exists()  # the inner zip was unpacked and removed
    assert not (ann / "panoptic_train2017").exists() and not (ann / "panoptic_train2017.zip").exists()
    assert (ann / "png_coco_val2017.json").read_text() == "[]"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind


def test_extract_tar_gz_with_member_patterns(tmp_path):
    archive = tmp_path / "wb.tar.gz"
    archive.write_bytes(_tar_gz_bytes({"wb/metadata.csv": b"img_id,y\n1,0\n", "wb/001.Bird/a.jpg": b"jpg",
                                       "wb/other.txt": b"x"}))
    out = tmp_path / "out"
    extract(archive, out, ["wb/metadata.csv", "wb/*.Bird"])
    assert (out / "wb" / "metadata.csv").read_bytes() == b"img_id,y\n1,0\n"
    assert (out / "wb" / "001.Bird" / "a.jpg").read_bytes() == b"jpg"
    assert not (out / "wb" / "other.txt").exists()
    with pytest.raises(ArchiveError, match="members matching \\['wb/absent'\\]"):
        extract(archive, tmp_path / "out2", ["wb/absent"])
    assert not (tmp_path / "out2").exists()  # a failed extraction does not even create the folder


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt"])
def test_zip_path_traversal_refused(tmp_path, evil):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip_bytes({"good.txt": b"ok", evil: b"pwned"}))
    out = tmp_path / "deep" / "out"
    with pytest.raises(ArchiveError, match="a relative path that stays inside"):
        extract(archive, out, None)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "deep" / "evil.txt").exists()
    assert not (out / "good.txt").exists()  # refused before anything was written


def test_tar_traversal_and_links_refused(tmp_path):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(_tar_gz_bytes({"ok.txt": b"ok", "../evil.txt": b"pwned"}))
    with pytest.raises(ArchiveError, match="evil"):
        extract(archive, tmp_path / "out", None)
    assert not (tmp_path / "evil.txt").exists()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    archive.write_bytes(buf.getvalue())
    with pytest.raises(ArchiveError, match="not a link"):
        extract(archive, tmp_path / "out", None)
    assert not (tmp_path / "out" / "passwd").exists()


# ---------------------------------------------------------------------------------------------- catalogue


def test_catalogue_resolve_and_overrides(tmp_path):
    coco = sources.resolve("coco_val2017_images", {})
    assert coco.size == 815_585_330 and coco.sha256.startswith("4f7e2ccb")
    mirror = sources.resolve("coco_val2017_images", {"coco_val2017_images": "/lab/mirror/val2017.zip"})
    assert mirror.url == "/lab/mirror/val2017.zip" and mirror.sha256 == coco.sha256  # same bytes expected
    with pytest.raises(InputError, match="imagenet_val.url: expected the path of your own copy"):
        sources.resolve("imagenet_val", {})
    assert sources.resolve("imagenet_val", {"imagenet_val": {"url": "/data/ILSVRC2012_img_val.tar"}}).md5 == \
        "29b22e2961454d5413ddabcf34fc5622"
    with pytest.raises(InputError, match="coco_val2017_images.checksum"):
        sources.resolve("coco_val2017_images", {"coco_val2017_images": {"checksum": "x"}})
    with pytest.raises(InputError, match="one of coco_val2017_images"):
        sources.resolve("coco2014")
    for source in sources.SOURCES.values():  # pinned raw URLs, never a moving branch
        if source.url and "raw.githubusercontent.com" in source.url:
            assert "/main/" not in source.url and "/master/" not in source.url
        assert source.record_checksum or source.sha256 or source.md5, source.name


# ---------------------------------------------------------------------------------------------- CLI verbs


@pytest.fixture
def verbs(monkeypatch):
    """The two verbs registered as the lead will register them in clipxai.commands.COMMAND_MODULES."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["download", "fetch_weights"])


def test_cli_download_404_prints_one_line(server, verbs, tmp_path, capsys):
    dest = tmp_path / "png_coco_val2017.json"
    code = cli.main(["download", "png_coco_val2017", "--dest", str(dest), "--url", server.url("/gone.json"),
                     "--lock", str(tmp_path / "lock.yaml"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "404" in lines[0] and server.url("/gone.json") in lines[0]
    assert captured.out == ""
    assert no_output(dest) and not (tmp_path / "lock.yaml").exists()


def test_cli_download_extract_and_stamp(server, verbs, panoptic_zip, tmp_path, capsys):
    server.routes["/panoptic.zip"] = Route(panoptic_zip)
    archive, root, stamp = tmp_path / "dl" / "panoptic.zip", tmp_path / "coco", tmp_path / "panoptic.done.json"
    code = cli.main(["download", "coco_panoptic_annotations", "--dest", str(archive),
                     "--url", server.url("/panoptic.zip"), "--sha256", sha256(panoptic_zip),
                     "--size", str(len(panoptic_zip)), "--extract-to", str(root), "--remove-archive",
                     "--stamp", str(stamp), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (root / "annotations" / "panoptic_val2017" / "000000000139.png").exists()
    assert not archive.exists()
    record = json.loads(stamp.read_text())
    assert record["sha256"] == sha256(panoptic_zip) and record["extracted_to"] == str(root)


# ---------------------------------------------------------------------------------------------- fetch-weights


TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
             "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture
def tiny_open_clip(monkeypatch, tmp_path):
    """A tiny model config registered with open_clip, and its state dict saved as a checkpoint file."""
    import open_clip
    import torch

    name = "clipxai-test-tiny"
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, name, json.loads(json.dumps(TINY_CLIP)))
    model = open_clip.create_model(name)
    path = tmp_path / "tiny_weights.pt"
    torch.save(model.state_dict(), path)
    return name, model.state_dict(), path.read_bytes()


def test_fetch_weights_url_tag_through_local_server(server, verbs, tiny_open_clip, monkeypatch, tmp_path):
    import open_clip
    import torch

    name, state, payload = tiny_open_clip
    server.routes["/weights/tiny_weights.pt"] = Route(payload, cut_after=5_000)  # resumed like any download
    # Only the URL of the pretrained tag points at the local server (and no hub id, as for URL-only tags).
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, name,
                        {"local": {"url": server.url("/weights/tiny_weights.pt"), "hf_hub": ""}})
    cache, stamp = tmp_path / "cache", tmp_path / "models" / "tiny" / "weights.json"
    code = cli.main(["fetch-weights", "--model", name, "--pretrained", "local", "--cache-dir", str(cache),
                     "--stamp", str(stamp), "--check-load", "--lock", str(tmp_path / "lock.yaml"),
                     "--no-progress"])
    assert code == 0
    record = json.loads(stamp.read_text())
    (entry,) = record["files"]
    assert Path(entry["path"]) == cache / "tiny_weights.pt" and entry["sha256"] == sha256(payload)
    assert record["checked_load"] is True and record["source"] == server.url("/weights/tiny_weights.pt")
    assert recorded_checksum(tmp_path / "lock.yaml", f"{name}:local")["sha256"] == sha256(payload)
    # A compute node without network: open_clip finds the cached file and loads exactly the served weights.
    server.stop()
    loaded = open_clip.create_model(name, pretrained="local", cache_dir=str(cache))
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_fetch_weights_hub_tag_from_prefilled_cache(verbs, tiny_open_clip, monkeypatch, tmp_path):
    import huggingface_hub.constants
    import open_clip

    from safetensors.torch import save as safetensors_bytes

    name, state, _torch_payload = tiny_open_clip
    payload = safetensors_bytes({k: v.contiguous() for k, v in state.items()})
    repo_id, revision = "clipxai-test/tiny-clip", "0123456789abcdef0123456789abcdef01234567"
    cache = tmp_path / "hf"
    snapshot = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(payload)
    (cache / f"models--{repo_id.replace('/', '--')}" / "refs").mkdir()
    (cache / f"models--{repo_id.replace('/', '--')}" / "refs" / "main").write_text(revision)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no hub here: the cache must do
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, name, {"hub": {"url": "", "hf_hub": f"{repo_id}/"}})
    stamp = tmp_path / "weights.json"
    assert cli.main(["fetch-weights", "--model", name, "--pretrained", "hub", "--cache-dir", str(cache),
                     "--stamp", str(stamp)]) == 0
    record = json.loads(stamp.read_text())
    assert record["source"] == f"hf_hub:{repo_id}/"
    assert record["files"][0]["sha256"] == sha256(payload)
    assert Path(record["files"][0]["path"]).resolve() == (snapshot / "open_clip_model.safetensors").resolve()


def test_fetch_weights_catalogued_checkpoint_from_mirror(server, verbs, tiny_open_clip, tmp_path):
    _name, _state, payload = tiny_open_clip
    server.routes["/mirror/clippy_5k.pt"] = Route(payload)
    server.routes["/mirror/tokenizer.json"] = Route(b'{"version": "1.0", "model": {"type": "Unigram"}}')
    cache, lock, stamp = tmp_path / "cache", tmp_path / "lock.yaml", tmp_path / "clippy" / "weights.json"
    args = ["fetch-weights", "--model", "clippy-B-16", "--pretrained", "clippy_5k", "--cache-dir", str(cache),
            "--url", server.url("/mirror/clippy_5k.pt"), "--lock", str(lock), "--stamp", str(stamp),
            "--tokenizer-url", server.url("/mirror/tokenizer.json"), "--no-progress"]
    assert cli.main(args) == 0
    # CLIPpy's text tower comes with its weights: the tokenizer beside the shipped T5 config, pinned in the lock
    tokenizer = json.loads(stamp.read_text())["tokenizer"]
    assert [Path(f["path"]).name for f in tokenizer["files"]] == ["tokenizer.json", "config.json"]
    assert recorded_checksum(lock, "sentence_t5_base_tokenizer") is not None
    assert (cache / "clippy_5k.pt").read_bytes() == payload
    assert recorded_checksum(lock, "clippy_5k")["sha256"] == sha256(payload)
    assert json.loads(stamp.read_text())["files"][0]["sha256"] == sha256(payload)
    # The mirror now serves other bytes: a fresh cache refuses them against the recorded checksum.
    server.routes["/mirror/clippy_5k.pt"] = Route(payload[:-1] + bytes([payload[-1] ^ 1]))
    args[args.index(str(cache))] = str(tmp_path / "cache2")
    assert cli.main(args) == 2
    assert not (tmp_path / "cache2" / "clippy_5k.pt").exists()


def test_fetch_weights_unknown_tag_is_one_line(verbs, capsys, tmp_path):
    code = cli.main(["fetch-weights", "--model", "ViT-B-32", "--pretrained", "nonsense", "--stamp",
                     str(tmp_path / "w.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "laion2b_s34b_b79k" in err[0] and "clippy_5k" in err[0]
    assert not (tmp_path / "w.json").exists()
