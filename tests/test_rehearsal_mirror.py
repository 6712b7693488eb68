"""The rehearsal mirror (clipxai rehearsal-mirror): one file per catalogue download in the real layout, read back
through the project's own download, extract and reader code; the same bytes on every run; a truthful manifest."""

from __future__ import annotations

import hashlib
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipxai import cli
from clipxai.data import coco_panoptic, download, imagenet, imagenet_seg, png, rehearsal, sources, voc, waterbirds


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mirror") / "mirror"
    assert cli.main(["rehearsal-mirror", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def manifest(mirror) -> dict:
    return json.loads((mirror / "manifest.json").read_text())


def _file(mirror: Path, name: str) -> Path:
    return mirror / sources.get(name).filename


def _extract(mirror: Path, name: str, into: Path) -> Path:
    source = sources.get(name)
    return download.extract(mirror / source.filename, into, source.members, nested=source.nested)


def test_same_bytes_on_every_run(mirror, manifest, tmp_path):
    again = rehearsal.write_mirror(tmp_path / "again")
    assert again == manifest
    for entry in manifest["files"]:
        assert (tmp_path / "again" / entry["path"]).read_bytes() == (mirror / entry["path"]).read_bytes()
    assert (tmp_path / "again" / "manifest.json").read_bytes() == (mirror / "manifest.json").read_bytes()
    # no clock in the bytes: two runs within a second would agree even if the time leaked into an archive
    for entry in manifest["files"]:
        path = mirror / entry["path"]
        if path.name.endswith(".gz"):
            assert path.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime
            with tarfile.open(path) as archive:
                assert {m.mtime for m in archive.getmembers()} == {rehearsal.TAR_MTIME}
        elif path.suffix == ".tar":
            with tarfile.open(path) as archive:
                assert {m.mtime for m in archive.getmembers()} == {rehearsal.TAR_MTIME}
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                assert {m.date_time for m in archive.infolist()} == {rehearsal.ZIP_TIME}
    # writing over an earlier mirror replaces it, with nothing left beside it
    rehearsal.write_mirror(tmp_path / "again")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]


def test_every_catalogue_source_but_model_files_has_its_file(mirror, manifest):
    listed = {entry["path"]: entry["source"] for entry in manifest["files"]}
    for source in sources.SOURCES.values():
        if source.name in rehearsal.NOT_MIRRORED:
            assert source.kind == "weights" or source.name == "sentence_t5_base_tokenizer"
            assert not (mirror / source.filename).exists()
            continue
        assert listed.get(source.filename) == source.name, source.name
    assert set(manifest["not_mirrored"]) == {"clippy_5k", "sentence_t5_base_tokenizer"}


def test_manifest_checksums_match_the_files(mirror, manifest):
    on_disk = sorted(p.relative_to(mirror).as_posix() for p in mirror.rglob("*") if p.is_file())
    assert sorted([e["path"] for e in manifest["files"]] + ["manifest.json"]) == on_disk
    for entry in manifest["files"]:
        data = (mirror / entry["path"]).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["md5"] == hashlib.md5(data).hexdigest()
        assert entry["source"] in sources.SOURCES


def test_download_accepts_each_file_with_the_manifest_checksums(mirror, manifest, tmp_path):
    # what a lab mirror's `sources:` entry gives: the URL and the manifest's checksums; the catalogue's content
    # sniffing must accept each file as the kind the real host serves
    for entry in manifest["files"]:
        if "/" in entry["path"]:
            continue
        source = sources.get(entry["source"])
        dest = download.download(str(mirror / entry["path"]), tmp_path / entry["path"], size=entry["size"],
                                 sha256=entry["sha256"], md5=entry["md5"], expect=source.expect, progress=False)
        assert dest.read_bytes() == (mirror / entry["path"]).read_bytes()


def test_coco_and_png_read_back_in_the_real_layout(mirror, tmp_path):
    root = tmp_path / "coco"
    _extract(mirror, "coco_val2017_images", root / "images")
    _extract(mirror, "coco_panoptic_annotations", root)
    annotations = root / "annotations"
    # the nested zip is unpacked into COCO's folder and removed; the train split is not among the members
    assert sorted(p.name for p in annotations.iterdir()) == ["panoptic_val2017", "panoptic_val2017.json"]
    (annotations / "png_coco_val2017.json").write_bytes(_file(mirror, "png_coco_val2017").read_bytes())
    dataset = png.load(root, "val")
    ids = [image_id for image_id, _ in rehearsal.COCO_VAL_IMAGES]
    assert sorted(dataset.panoptic.images) == sorted(ids)
    assert dataset.unlocated == []
    assert dataset.n_narratives == 2 * len(ids)
    sizes = set()
    for image_id, (width, height) in rehearsal.COCO_VAL_IMAGES:
        path = coco_panoptic.image_path(root, "val", f"{image_id:012d}.jpg")
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (width, height)
        sizes.add(round(width / height, 2))
        assert dataset.panoptic.read_segment_ids(image_id).shape == (height, width)
    assert len(sizes) >= 4  # varied aspect ratios, landscape and portrait
    assert {e.image_id for e in dataset.entries} == set(ids)
    for entry in dataset.entries:
        assert dataset.mask(entry).any()
    narratives = json.loads((annotations / "png_coco_val2017.json").read_text())
    segments = [s for n in narratives for s in n["segments"]]
    assert all(isinstance(n["image_id"], str) and isinstance(n["annotator_id"], int) for n in narratives)
    assert any(s["segment_ids"] for s in segments) and any(not s["segment_ids"] for s in segments)
    assert all(isinstance(i, str) for s in segments for i in s["segment_ids"])
    assert {tuple(sorted(s)) for s in segments} == {("noun", "plural", "segment_ids", "utterance")}


def test_imagenet_seg_reads_back(mirror):
    data = imagenet_seg.load(_file(mirror, "imagenet_seg_gtsegs"))
    try:
        assert len(data) == 4
        shapes_seen = set()
        for image, mask in data:
            assert image.dtype == np.uint8 and image.shape[:2] == mask.shape
            assert set(np.unique(mask)) == {0, 1}
            shapes_seen.add(mask.shape)
        assert len(shapes_seen) == 4 and any(h != w for h, w in shapes_seen)
    finally:
        data.close()
    assert _file(mirror, "imagenet_seg_gtsegs").read_bytes()[:10] == b"MATLAB 7.3"


def test_waterbirds_reads_back(mirror, tmp_path):
    _extract(mirror, "waterbirds", tmp_path)
    root = tmp_path / "waterbird_complete95_forest2water2"
    assert sorted(p.name for p in tmp_path.iterdir()) == [root.name]
    records = waterbirds.load(root)
    assert [r.split for r in records] == [0] * 4 + [1] * 2 + [2] * 4
    assert {(r.y, r.place) for r in records if r.split == 2} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert not (root / "shapes_world.json").exists()


def test_voc_reads_back_with_palette_labels_and_void_borders(mirror, tmp_path):
    _extract(mirror, "voc2012_trainval", tmp_path)
    for split in ("train", "val"):
        data = voc.load(tmp_path, split)
        assert data.ids == list(rehearsal.VOC_IDS[split])
        for image_id, image, label in data:
            assert image.shape[:2] == label.shape
            assert 255 in label and (label[label != 255] > 0).any()
    base = voc.voc_root(tmp_path)
    with Image.open(base / "SegmentationClass" / "2007_000033.png") as label_png:
        assert label_png.mode == "P"
    trainval = (base / "ImageSets" / "Segmentation" / "trainval.txt").read_text().split()
    assert trainval == list(rehearsal.VOC_IDS["train"] + rehearsal.VOC_IDS["val"])
    assert not (base / "class_names.txt").exists()  # the real tar has none


def test_imagenet_tars_and_folders_read_back_with_the_same_labels(mirror, tmp_path):
    root = tmp_path / "imagenet"
    _extract(mirror, "imagenet_val", root)
    _extract(mirror, "imagenet_devkit", root)
    from_tars = imagenet.load(root)
    assert from_tars.layout == "devkit" and len(from_tars.wnids) == imagenet.N_CLASSES
    names = [p.name for p, _ in from_tars]
    assert names == [f"ILSVRC2012_val_{k:08d}.JPEG" for k in range(1, 7)]
    labels = [label for _, label in from_tars]
    assert labels == [0, 1, 499, 999, 1, 776]  # stand-in wnids sort in ILSVRC2012 id order
    unpacked = imagenet.load(mirror / "imagenet")
    assert [(p.name, label) for p, label in unpacked] == list(zip(names, labels))
    folders = imagenet.load(mirror / "imagenet_folders", devkit=mirror / "imagenet" / imagenet.DEVKIT)
    assert folders.layout == "folders"
    assert sorted((p.name, label) for p, label in folders) == sorted(zip(names, labels))


def test_text_pools_are_lines_of_text(mirror):
    for name in ("textspan_image_descriptions_general", "textspan_google_3498_english",
                 "pclens_top_1500_nouns_bias_clean", "pclens_top_1500_nouns_clean"):
        text = _file(mirror, name).read_text()
        lines = text.splitlines()
        assert text.endswith("\n") and len(lines) >= 20 and all(line.strip() for line in lines)
        assert len(set(lines)) == len(lines)


def test_refuses_a_folder_that_is_not_a_mirror(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("not a mirror")
    assert cli.main(["rehearsal-mirror", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_help_says_model_weights_are_not_mirrored(capsys):
    assert cli.main(["rehearsal-mirror", "--help"]) == 0
    assert "model weights and CLIPpy's tokenizer are not mirrored" in " ".join(capsys.readouterr().out.split())


def test_the_download_verb_fetches_the_coco_path_over_http_with_the_manifest_checksums(mirror, manifest, tmp_path):
    """What the paper rules run (rules/data.smk), served from the mirror on 127.0.0.1, then read by png.load."""
    from httpfixture import FixtureServer, Route

    checksums = {e["path"]: e for e in manifest["files"]}
    root = tmp_path / "coco"
    with FixtureServer() as server:
        def fetch(name: str, *extra: str) -> None:
            file_name = sources.get(name).filename
            server.routes[f"/{file_name}"] = Route((mirror / file_name).read_bytes())
            entry = checksums[file_name]
            argv = ["download", name, "--url", server.url(f"/{file_name}"), "--sha256", entry["sha256"],
                    "--md5", entry["md5"], "--size", str(entry["size"]), *extra]
            assert cli.main(argv) == 0, name

        fetch("coco_val2017_images", "--dest", str(tmp_path / "dl" / "val2017.zip"),
              "--extract-to", str(root / "images"), "--remove-archive", "--stamp", str(root / ".images.json"))
        fetch("coco_panoptic_annotations", "--dest", str(tmp_path / "dl" / "panoptic.zip"),
              "--extract-to", str(root), "--stamp", str(root / ".panoptic.json"))
        fetch("png_coco_val2017", "--dest", str(png.narratives_path(root, "val")))
    dataset = png.load(root, "val")
    assert dataset.n_narratives == 2 * len(rehearsal.COCO_VAL_IMAGES) and len(dataset) > 0
    assert not (tmp_path / "dl" / "val2017.zip").exists()


def test_sources_config_points_every_mirrored_source_at_the_mirror(manifest):
    config = rehearsal.sources_config(manifest, "http://127.0.0.1:8000/")
    assert set(config) == set(sources.SOURCES) - set(rehearsal.NOT_MIRRORED)
    for name, entry in config.items():
        assert entry["url"] == f"http://127.0.0.1:8000/{sources.get(name).filename}"
        args = sources.download_arguments(name, entry)  # what rules/common.smk passes to `clipxai download`
        assert args[:2] == ["--url", entry["url"]] and "--sha256" in args and "--no-checksum" not in args
        resolved = sources.resolve(name, {name: entry})
        assert (resolved.sha256, resolved.size, resolved.unverified) == (entry["sha256"], entry["size"], False)


def test_a_failed_build_leaves_nothing_and_keeps_the_earlier_mirror(mirror, manifest, tmp_path, monkeypatch):
    def broken(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(rehearsal, "_write_voc", broken)
    with pytest.raises(OSError):
        rehearsal.write_mirror(tmp_path / "new")
    assert list(tmp_path.iterdir()) == []
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OSError):
        rehearsal.write_mirror(earlier)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier"]
    assert [p.name for p in earlier.iterdir()] == ["manifest.json"]
