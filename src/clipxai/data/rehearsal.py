"""A rehearsal mirror: a miniature copy of every real download of the catalogue (clipxai.data.sources).

Each file has the name, archive kind and layout of the real one as its host serves it (the zip inside COCO's
panoptic zip, the top folder of the Waterbirds tar.gz, VOCdevkit/VOC2012/ in the VOC tar, ...), so the download,
extract and read steps of the paper path run on it unchanged; it holds a handful of images drawn from the shapes
world with the project's own writers. A lab can serve the folder over HTTP (or point ``sources:`` at it) to test
its setup offline. Model weights (and CLIPpy's tokenizer) are not mirrored: see :data:`NOT_MIRRORED`.

The same call writes the same bytes: archive members are sorted and carry fixed timestamps, owners and modes, and
gzip headers carry neither a time nor a file name. ``manifest.json`` lists each file's size, sha256 and md5 and
the catalogue source it stands for.
"""

from __future__ import annotations

import gzip
import hashlib
import io as _io
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from clipxai.data import coco_panoptic, imagenet, imagenet_seg, png, shapes, sources, voc
from clipxai.errors import InputError
from clipxai.io import current_umask, write_json

SEED = 0
# Archive member times: COCO's 2017 release day (zip has no time zone; tar stores seconds since the epoch).
ZIP_TIME = (2017, 9, 1, 0, 0, 0)
TAR_MTIME = 1504224000  # 2017-09-01 00:00:00 UTC
# Sources the mirror does not write: model files (random weights of the real architectures stand in for them).
NOT_MIRRORED = tuple(s.name for s in sources.SOURCES.values() if s.kind == "weights") + ("sentence_t5_base_tokenizer",)
# Real COCO val2017 image ids and (width, height) of the miniature images: landscape, portrait and square.
COCO_VAL_IMAGES = ((139, (96, 72)), (285, (64, 96)), (632, (112, 84)), (724, (72, 72)), (776, (120, 68)),
                   (785, (80, 104)))
COCO_TRAIN_IMAGES = ((9, (96, 72)), (25, (72, 96)))
VOC_IDS = {"train": ("2007_000032", "2007_000039", "2008_000008"),
           "val": ("2007_000033", "2007_000042", "2007_000061", "2008_000009")}
N_IMAGENET_CLASSES = 1000
MANIFEST = "manifest.json"


# ------------------------------------------------------------------------------------------------ archives


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def write_zip(path: Path, root: Path, prefix: str = "") -> None:
    """Zip every file under ``root`` (names relative to it, under ``prefix``) with folder entries, sorted, at a
    fixed time: the same files give the same bytes. JPEGs and PNGs are stored (already compressed), the rest
    deflated."""
    entries: dict[str, Path | None] = {}
    for file in _files_under(root):
        name = prefix + file.relative_to(root).as_posix()
        parts = name.split("/")
        for depth in range(1, len(parts)):
            entries.setdefault("/".join(parts[:depth]) + "/", None)
        entries[name] = file
    buffer = _io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.create_system = 3  # unix, so the modes below are read as such
            file = entries[name]
            if file is None:
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
                continue
            info.external_attr = 0o100644 << 16
            info.compress_type = (zipfile.ZIP_STORED if file.suffix.lower() in (".jpg", ".jpeg", ".png", ".zip")
                                  else zipfile.ZIP_DEFLATED)
            archive.writestr(info, file.read_bytes())
    path.write_bytes(buffer.getvalue())


def write_tar(path: Path, root: Path, gz: bool = False) -> None:
    """Tar every file and folder under ``root`` (names relative to it), sorted, with fixed owner, modes and time;
    ``gz``: gzip-compressed with no time or name in the gzip header."""
    buffer = _io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for entry in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
            info = tarfile.TarInfo(entry.relative_to(root).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = TAR_MTIME, 0, 0, "", ""
            if entry.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                data = entry.read_bytes()
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, _io.BytesIO(data))
    data = buffer.getvalue()
    if gz:
        packed = _io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=6) as stream:
            stream.write(data)
        data = packed.getvalue()
    path.write_bytes(data)


# ------------------------------------------------------------------------------------------------ images


def _config(image_size: int) -> shapes.ShapesConfig:
    return shapes.ShapesConfig(seed=SEED, image_size=image_size)


def _cropped_scene(purpose: str, split: str, index: int, width: int, height: int, **pins) -> shapes.Scene:
    """A shapes scene rendered square at the larger side and centre-cropped to ``width x height``."""
    side = max(width, height, 32)
    scene = shapes.render_scene(_config(side), purpose, split, index, train=False, **pins)
    top, left = (side - height) // 2, (side - width) // 2
    window = (slice(top, top + height), slice(left, left + width))
    scene.image, scene.instances = scene.image[window], scene.instances[window]
    return scene


def _coco_split(staging: Path, split: str, images: tuple) -> list[dict]:
    """Write a COCO panoptic split (images, PNGs with COCO's folder name, JSON) under ``staging``; return the
    Panoptic Narrative Grounding narratives of its images (two per image, as the real file has several)."""
    cats = shapes.categories(_config(64))
    writer = coco_panoptic.PanopticWriter(staging, split, cats, info={
        "description": "clipxai rehearsal mirror (COCO 2017 layout)", "version": "1.0", "year": 2017},
        png_dir=coco_panoptic.COCO_PNG_DIR)
    narratives = []
    for index, (image_id, (width, height)) in enumerate(images):
        scene = _cropped_scene("rehearsal-coco", split, index, width, height)
        ids = np.zeros(scene.instances.shape, dtype=np.int32)
        segments, object_ids = [], {}
        for k, obj in enumerate(scene.objects):
            if not (scene.instances == k + 1).any():
                continue  # cropped away: no segment, and the narratives mention it without one
            cat = shapes.category_id(obj.name)
            ids[scene.instances == k + 1] = shapes.segment_id(cat)
            segments.append((shapes.segment_id(cat), cat))
            object_ids[k] = shapes.segment_id(cat)
        background_cat = len(shapes.COMBINATIONS) + shapes.BACKGROUNDS.index(scene.background) + 1
        if (scene.instances == 0).any():
            ids[scene.instances == 0] = shapes.segment_id(background_cat)
            segments.append((shapes.segment_id(background_cat), background_cat))
        writer.add(image_id, scene.image, ids, segments)
        # narrative 1: the world's caption; its connectors are utterances without segments
        narratives.append(png.make_narrative(image_id, scene.caption, [
            png.make_segment(text, [object_ids[k]] if k in object_ids else [], noun=k is not None)
            for text, k in scene.segments], annotator_id=1))
        # narrative 2, another annotator: every object and the background (a stuff segment) in one sentence
        parts = [("In this picture we can see", [])]
        for k, obj in enumerate(scene.objects):
            if k:
                parts.append(("and", []))
            parts.append((obj.phrase, [object_ids[k]] if k in object_ids else []))
        parts += [("on", []), (f"the {scene.background}", [shapes.segment_id(background_cat)]
                               if (scene.instances == 0).any() else []), (".", [])]
        caption = " ".join(text for text, _ in parts[:-1]) + "."
        narratives.append(png.make_narrative(image_id, caption, [
            png.make_segment(text, ids_, noun=bool(ids_) or text.startswith(("a ", "the "))) for text, ids_ in parts],
            annotator_id=2))
    writer.close()
    return narratives


def _write_coco(out: Path, work: Path) -> None:
    staging = work / "coco"
    val_narratives = _coco_split(staging, "val", COCO_VAL_IMAGES)
    _coco_split(staging, "train", COCO_TRAIN_IMAGES)
    write_zip(out / sources.get("coco_val2017_images").filename, staging / "images" / "val2017", "val2017/")
    annotations = work / "panoptic" / "annotations"
    annotations.mkdir(parents=True)
    for split in ("train2017", "val2017"):
        shutil.copyfile(staging / "annotations" / f"panoptic_{split}.json", annotations / f"panoptic_{split}.json")
        write_zip(annotations / f"panoptic_{split}.zip", staging / "annotations" / f"panoptic_{split}",
                  f"panoptic_{split}/")
    write_zip(out / sources.get("coco_panoptic_annotations").filename, work / "panoptic")
    (out / sources.get("png_coco_val2017").filename).write_text(json.dumps(val_narratives))


def _write_imagenet_seg(out: Path) -> None:
    sizes = ((96, 72), (64, 88), (80, 80), (104, 64))

    def samples():
        for index, (width, height) in enumerate(sizes):
            scene = _cropped_scene("rehearsal-imagenet-seg", "val", index, width, height, n_objects=1)
            yield scene.image, (scene.instances > 0).astype(np.uint8)

    imagenet_seg.write(out / sources.get("imagenet_seg_gtsegs").filename, samples())


def _write_waterbirds(out: Path, work: Path) -> None:
    name = sources.get("waterbirds").filename.removesuffix(".tar.gz")
    root = work / "waterbirds" / name
    shapes.write_waterbirds(root, _config(64), n_train=4, n_val=2, n_test=4, progress=False)
    (root / "shapes_world.json").unlink()  # the real archive has only metadata.csv and the class folders
    write_tar(out / sources.get("waterbirds").filename, work / "waterbirds", gz=True)


def _write_voc(out: Path, work: Path) -> None:
    sizes = ((96, 72), (72, 96), (88, 64), (80, 80))

    def samples(split: str):
        for index, image_id in enumerate(VOC_IDS[split]):
            width, height = sizes[index % len(sizes)]
            scene = _cropped_scene("rehearsal-voc", split, index, width, height)
            label = np.zeros(scene.instances.shape, dtype=np.uint8)
            for k, obj in enumerate(scene.objects):
                # VOC's 20 classes: each colour-shape combination stands for one of them
                label[scene.instances == k + 1] = 1 + shapes.COMBINATIONS.index(obj.name) % 20
            yield image_id, scene.image, voc.void_borders(label)

    voc.write(work / "voc", {split: samples(split) for split in ("train", "val")})
    write_tar(out / sources.get("voc2012_trainval").filename, work / "voc")


def imagenet_wnids() -> list[str]:
    """Stand-in wnids of the 1000 leaf classes (the real devkit's are not shipped), in ILSVRC2012 id order."""
    return [f"n{10000000 + 37 * k:08d}" for k in range(N_IMAGENET_CLASSES)]


def _write_imagenet(out: Path, work: Path) -> None:
    """The two licence-bound tars (flat val images; devkit) and, ready to point config at, an unpacked devkit
    layout (``imagenet/val`` + ``imagenet/ILSVRC2012_devkit_t12``) and a class-folder layout."""
    wnids = imagenet_wnids()
    sizes = ((96, 72), (64, 96), (80, 80), (112, 70), (72, 88), (90, 60))
    labels = (1, 2, 500, 1000, 2, 777)  # ILSVRC2012 ids, 1-based; one class twice

    def samples():
        for index, (width, height) in enumerate(sizes):
            yield labels[index], _cropped_scene("rehearsal-imagenet", "val", index, width, height).image

    layout = out / "imagenet"
    imagenet.write_devkit_layout(layout, wnids, samples(), words=[f"class {k + 1}" for k in range(len(wnids))])
    (work / "imagenet_val").mkdir()
    for image in sorted((layout / "val").iterdir()):
        shutil.copyfile(image, work / "imagenet_val" / image.name)
    write_tar(out / sources.get("imagenet_val").filename, work / "imagenet_val")
    shutil.copytree(layout / imagenet.DEVKIT, work / "imagenet_devkit" / imagenet.DEVKIT)
    write_tar(out / sources.get("imagenet_devkit").filename, work / "imagenet_devkit", gz=True)

    def folder_samples():
        for index, (width, height) in enumerate(sizes):
            image = _cropped_scene("rehearsal-imagenet", "val", index, width, height).image
            yield wnids[labels[index] - 1], f"ILSVRC2012_val_{index + 1:08d}.JPEG", image

    imagenet.write_class_folders(out / "imagenet_folders", folder_samples())


def _write_text_pools(out: Path) -> None:
    from clipxai.protocols.textpool import shapes_text_pool

    pool = shapes_text_pool()
    words = sorted({word.strip(".,").lower() for line in pool for word in line.split()})
    texts = {
        "textspan_image_descriptions_general": pool[:40],
        "textspan_google_3498_english": words,
        "pclens_top_1500_nouns_bias_clean": [f"A photo of {line}." for line in pool[:30]],
        "pclens_top_1500_nouns_clean": [f"A photo of {line}." for line in pool[:36]],
    }
    for name, lines in texts.items():
        (out / sources.get(name).filename).write_text("".join(f"{line}\n" for line in lines))


# ------------------------------------------------------------------------------------------------ the mirror


def _source_of(relative: str) -> str:
    """The catalogue source a mirror file stands for (the unpacked ImageNet folders stand for the two tars)."""
    for source in sources.SOURCES.values():
        if relative == source.filename:
            return source.name
    if relative.startswith(f"imagenet/{imagenet.DEVKIT}/"):
        return "imagenet_devkit"
    if relative.startswith(("imagenet/", "imagenet_folders/")):
        return "imagenet_val"
    raise AssertionError(f"mirror file {relative} stands for no catalogue source")


def _digests(path: Path) -> dict:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha256.update(block)
            md5.update(block)
    return {"size": path.stat().st_size, "sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


def manifest(root: Path) -> dict:
    files = []
    for path in _files_under(root):
        relative = path.relative_to(root).as_posix()
        if relative == MANIFEST:
            continue
        files.append({"path": relative, "source": _source_of(relative), **_digests(path)})
    return {"description": "clipxai rehearsal mirror: miniature copies of the catalogue's downloads",
            "seed": SEED, "not_mirrored": list(NOT_MIRRORED), "files": files}


def _build(out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out))
    try:
        _write_coco(out, work)
        _write_imagenet_seg(out)
        _write_waterbirds(out, work)
        _write_voc(out, work)
        _write_imagenet(out, work)
        _write_text_pools(out)
    finally:
        shutil.rmtree(work)
    write_json(out / MANIFEST, manifest(out))


def write_mirror(out: str | Path) -> dict:
    """Write the mirror into folder ``out`` (built beside it, then renamed into place; an earlier mirror there is
    replaced, any other non-empty folder refused); return the manifest."""
    out = Path(out).absolute()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise InputError(out, "OUT", "a new or empty folder, or an earlier rehearsal mirror (with manifest.json)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 would outlive the rename
        _build(staging)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, retired / "mirror")
            os.replace(staging, out)
            shutil.rmtree(retired)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return json.loads((out / MANIFEST).read_text())


def sources_config(manifest_: dict, base_url: str) -> dict:
    """The config ``sources:`` mapping that points every mirrored download at ``base_url`` (where the mirror
    folder is served) with the mirror's own checksums (its bytes are not the real hosts')."""
    base = base_url.rstrip("/")
    return {entry["source"]: {"url": f"{base}/{entry['path']}", "sha256": entry["sha256"], "md5": entry["md5"],
                              "size": entry["size"]}
            for entry in manifest_["files"] if "/" not in entry["path"]}


__all__ = ["NOT_MIRRORED", "imagenet_wnids", "manifest", "sources_config", "write_mirror", "write_tar", "write_zip"]
