"""The rehearsal mirror (clipxai rehearsal-mirror): one file per catalogue download in the real layout (CLIPpy's
checkpoint and tokenizer included), the licence-bound local data and random open_clip weights, read back through
the project's own download, extract, fetch-weights, model and reader code; the same bytes on every run; a truthful
manifest; a `sources:` overlay that validates against the config schema."""

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
from clipxai.errors import InputError
from clipxai.data import (affectnet, artemis, coco_panoptic, download, imagenet, imagenet_seg, png, rehearsal,
                          sources, voc, waterbirds)

REPO = Path(__file__).resolve().parents[1]
BASE_URL = "http://127.0.0.1:8765/mirror"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mirror") / "mirror"
    assert cli.main(["rehearsal-mirror", str(out), "--base-url", BASE_URL]) == 0
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
    again = rehearsal.write_mirror(tmp_path / "again", base_url=BASE_URL)
    assert again == manifest
    for entry in manifest["files"]:
        assert (tmp_path / "again" / entry["path"]).read_bytes() == (mirror / entry["path"]).read_bytes()
    for name in ("manifest.json", "sources.yaml"):
        assert (tmp_path / "again" / name).read_bytes() == (mirror / name).read_bytes()
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


def test_every_catalogue_source_has_its_file(mirror, manifest):
    listed = {entry["path"]: entry["source"] for entry in manifest["files"]}
    for source in sources.SOURCES.values():
        # every catalogue source is mirrored (what remains unmirrored, the open_clip hub tags, is not catalogued)
        assert source.name not in rehearsal.NOT_MIRRORED
        assert listed.get(source.filename) == source.name, source.name
    assert manifest["not_mirrored"] == list(rehearsal.NOT_MIRRORED)
    assert all("open_clip" in item for item in manifest["not_mirrored"])
    # the local-path data stand for no download, the weights only with --weights
    assert {e["source"] for e in manifest["files"] if e["source"] not in sources.SOURCES} == {"artemis", "affectnet"}


def test_manifest_checksums_match_the_files(mirror, manifest):
    on_disk = sorted(p.relative_to(mirror).as_posix() for p in mirror.rglob("*") if p.is_file())
    assert sorted([e["path"] for e in manifest["files"]] + ["manifest.json", "sources.yaml"]) == on_disk
    for entry in manifest["files"]:
        data = (mirror / entry["path"]).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["md5"] == hashlib.md5(data).hexdigest()
        assert entry["source"] in sources.SOURCES or entry["source"] in rehearsal.LOCAL_SOURCES


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


def test_help_documents_the_layout_and_what_is_not_mirrored(capsys):
    assert cli.main(["rehearsal-mirror", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("OUT/imagenet/val -> datasets.imagenet.path", "similarity.studies.affectnet.path",
                   "OUT/weights/<ARCH>.safetensors (--weights) -> models.<m>.checkpoint", "clippy_5k.pt",
                   "tokenizer.json", "Not mirrored: open_clip pretrained tags", "OUT/sources.yaml"):
        assert phrase in text, phrase


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
    assert set(config) == set(sources.SOURCES)
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


# ------------------------------------------------------------------------------------------ CLIPpy's files


def test_tokenizer_is_a_t5_layout_unigram_file_that_covers_the_mirror_texts(mirror):
    from tokenizers import Tokenizer

    text = _file(mirror, "sentence_t5_base_tokenizer").read_text()
    spec = json.loads(text)
    assert spec["model"]["type"] == "Unigram" and spec["model"]["unk_id"] == 2
    assert [piece for piece, _ in spec["model"]["vocab"][:3]] == ["<pad>", "</s>", "<unk>"]
    assert spec["pre_tokenizer"]["pretokenizers"][-1]["type"] == "Metaspace"
    tokenizer = Tokenizer.from_str(text)
    assert tokenizer.get_vocab_size() < 32100  # every id fits T5's embedding
    assert tokenizer.token_to_id("<extra_id_0>") == tokenizer.get_vocab_size() - 1  # T5's sentinel order
    for line in rehearsal._mirror_texts(mirror):
        encoding = tokenizer.encode(line)
        assert encoding.ids[-1] == 1 and 2 not in encoding.ids, line  # </s> appended, nothing unknown
    assert rehearsal.build_tokenizer(rehearsal._mirror_texts(mirror)) == text


def test_clippy_release_file_is_tensors_only_in_the_release_layout(mirror):
    import torch

    from clipxai.models.registry import check_checkpoint

    path = _file(mirror, "clippy_5k")
    check_checkpoint(path)  # the project's safe loader: weights_only
    release = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    assert set(release) == {"epoch", "name", "state_dict"}
    keys = set(release["state_dict"])
    assert all(k.startswith("module.") for k in keys)
    assert "module.text.0.auto_model.shared.weight" in keys and "module.text.2.linear.weight" in keys
    assert any(k.startswith("module.visual.trunk.blocks.11.") for k in keys)
    shared = release["state_dict"]["module.text.0.auto_model.shared.weight"]
    assert shared.shape == (32128, 768)
    assert shared.untyped_storage().data_ptr() == release["state_dict"][
        "module.text.0.auto_model.encoder.embed_tokens.weight"].untyped_storage().data_ptr()  # saved once


def test_clippy_fetched_from_the_mirror_loads_offline_and_tokenizes(mirror, manifest, tmp_path, monkeypatch):
    """What the paper rules do for CLIPpy: fetch-weights from the mirror (checkpoint and tokenizer.json, the
    mirror's checksums), then a job builds clippy-B-16 from the stamp with no hub access."""
    import torch

    from clipxai.models import clippy

    entries = {e["source"]: e for e in manifest["files"]}
    stamp = tmp_path / "clippy" / "weights.json"
    argv = ["fetch-weights", "--model", clippy.MODEL_NAME, "--pretrained", "clippy_5k", "--cache-dir",
            str(tmp_path / "cache"), "--stamp", str(stamp), "--no-progress"]
    for prefix, name in (("", "clippy_5k"), ("tokenizer-", "sentence_t5_base_tokenizer")):
        entry = entries[name]
        argv += [f"--{prefix}url", str(mirror / entry["path"]), f"--{prefix}sha256", entry["sha256"],
                 f"--{prefix}size", str(entry["size"])]
    assert cli.main(argv) == 0
    record = json.loads(stamp.read_text())
    assert sorted(p.name for p in Path(record["tokenizer"]["dir"]).iterdir()) == ["config.json", "tokenizer.json"]

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(clippy, "_hub_cached", lambda repo, filename: False)
    try:
        loaded = clippy.load(clippy.MODEL_NAME, checkpoint=str(stamp))
    finally:
        clippy.register()  # later tests get the default tokenizer source back
    tokens = loaded.tokenizer(["a photo of a red circle.", "class 17"])
    assert tokens.shape == (2, 77) and int(tokens.max()) < 32100
    for row in tokens:
        length = int((row != 0).sum())
        assert row[length - 1] == 1 and row[length:].eq(0).all() and 2 not in row[:length].tolist()
    expected = clippy.load_checkpoint_state(_file(mirror, "clippy_5k"))
    state = loaded.model.state_dict()
    for key in ("logit_scale", "visual.trunk.blocks.0.attn.qkv.weight", "text.proj.weight",
                "text.transformer.embed_tokens.weight"):
        assert torch.equal(state[key], expected[key]), key
    with torch.no_grad():
        embedding = loaded.model.encode_text(tokens)
    assert embedding.shape == (2, 768) and torch.isfinite(embedding).all()


# ------------------------------------------------------------------------------------ open_clip weights


TINY_ARCH = "clipxai-rehearsal-tiny"
TINY_CFG = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1,
                                            "head_width": 16},
            "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def test_weights_option_writes_loadable_random_weights(tmp_path, monkeypatch):
    import open_clip
    import torch

    from clipxai.models.registry import load_model

    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, TINY_ARCH, TINY_CFG)
    monkeypatch.setattr(rehearsal, "WEIGHT_ARCHS", (TINY_ARCH,))
    monkeypatch.setattr(rehearsal, "_write_clippy", lambda out: None)  # not what this test is about (800 MB)
    record = rehearsal.write_mirror(tmp_path / "m", weights=["all"])
    (entry,) = [e for e in record["files"] if e["source"] == "weights"]
    assert entry["path"] == f"weights/{TINY_ARCH}.safetensors" and entry["model"] == TINY_ARCH
    path = tmp_path / "m" / entry["path"]
    # what a job given config `checkpoint:` does: a strict open_clip load of exactly these tensors
    loaded = load_model(TINY_ARCH, checkpoint=str(path))
    expected = rehearsal.open_clip_state(TINY_ARCH)
    state = loaded.model.state_dict()
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    torch.manual_seed(1)
    assert not torch.equal(open_clip.create_model(TINY_ARCH).state_dict()["visual.conv1.weight"],
                           expected["visual.conv1.weight"])
    # same bytes again (several times: the safetensors header must not depend on a hash order), and weights are
    # local paths: not in the sources overlay
    for n in range(4):
        again = rehearsal.write_mirror(tmp_path / f"again{n}", weights=[TINY_ARCH])
        assert (tmp_path / f"again{n}" / entry["path"]).read_bytes() == path.read_bytes() and again == record
    assert "weights" not in rehearsal.sources_config(record, BASE_URL)
    with pytest.raises(InputError):
        rehearsal.write_mirror(tmp_path / "bad", weights=["ViT-H-14"])
    assert not (tmp_path / "bad").exists()


def test_weights_option_extends_and_all_means_every_arch():
    parser, _ = cli.build_parser(["rehearsal_mirror"])
    verb = parser.verbs["rehearsal-mirror"]
    args = verb.parse_args(["out", "--weights", "ViT-B-16", "--weights", "ViT-L-14", "ViT-B-16"])
    assert rehearsal.weight_archs(args.weights) == ["ViT-B-16", "ViT-L-14"]
    assert rehearsal.weight_archs(verb.parse_args(["out", "--weights", "all"]).weights) == list(
        rehearsal.WEIGHT_ARCHS) == ["ViT-B-32-quickgelu", "ViT-B-16", "ViT-L-14"]
    assert verb.parse_args(["out"]).weights == []
    import open_clip

    assert all(open_clip.get_model_config(arch) for arch in rehearsal.WEIGHT_ARCHS)


# ------------------------------------------------------------------------------ similarity studies' data


def test_artemis_and_wikiart_read_back_with_every_emotion(mirror):
    paintings = artemis.load(mirror / "artemis" / "artemis_dataset_release_v0.csv", mirror / "wikiart")
    artemis.verify(paintings)
    assert len(paintings) == rehearsal.N_PAINTINGS
    assert [(p.art_style, p.painting) for p in paintings] == sorted(rehearsal.painting_names())
    assert (sum(p.counts for p in paintings) > 0).all()  # every emotion, "something else" included
    assert len({int(p.counts.argmax()) for p in paintings}) > 1
    for painting in paintings:
        with Image.open(painting.image_path) as image:
            assert image.format == "JPEG"


def test_affectnet_val_set_reads_back_with_every_expression(mirror):
    root = mirror / "affectnet" / "val_set"
    faces = affectnet.load(root)
    affectnet.verify(faces)
    assert sorted({f.label for f in faces}) == list(range(len(affectnet.EXPRESSIONS)))
    assert len(faces) == rehearsal.N_FACES - 1  # the face labelled 8 (none) is skipped, as in the release
    assert np.load(root / "annotations" / "8_exp.npy").item() == "8"
    assert sorted(p.name for p in root.iterdir()) == ["annotations", "images"]


def test_similarity_studies_build_from_the_mirror_paths(mirror):
    from clipxai.protocols.similarity import build_study

    art = build_study("artemis", {"kind": "artemis", "csv": str(mirror / "artemis" / "artemis_dataset_release_v0.csv"),
                                  "images": str(mirror / "wikiart")}, 1000, 0)
    faces = build_study("affectnet", {"kind": "affectnet", "path": str(mirror / "affectnet" / "val_set")}, 1000, 0)
    assert len(art.ids) == rehearsal.N_PAINTINGS and len(faces.ids) == rehearsal.N_FACES - 1


# ------------------------------------------------------------------------------------------ sources.yaml


def test_sources_yaml_is_a_valid_overlay_of_the_served_files(mirror, manifest):
    import yaml

    from clipxai.config import load_schema, validate

    overlay = yaml.safe_load((mirror / "sources.yaml").read_text())
    assert list(overlay) == ["sources"]
    assert overlay["sources"] == rehearsal.sources_config(manifest, BASE_URL)
    served = sorted(p.name for p in mirror.iterdir() if p.is_file() and p.name not in ("manifest.json",
                                                                                        "sources.yaml"))
    assert sorted(entry["url"].rsplit("/", 1)[1] for entry in overlay["sources"].values()) == served
    assert {"clippy_5k", "sentence_t5_base_tokenizer"} <= set(overlay["sources"])
    schema = load_schema()  # the packaged schema
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    validate({**base, **overlay}, schema)


def test_base_url_must_be_a_url_or_an_absolute_path(tmp_path, capsys):
    assert cli.main(["rehearsal-mirror", str(tmp_path / "m"), "--base-url", "relative/dir"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--base-url" in err[0]
    assert not (tmp_path / "m").exists()
    assert rehearsal.check_base_url("file:///srv/mirror") and rehearsal.check_base_url("/srv/mirror")
