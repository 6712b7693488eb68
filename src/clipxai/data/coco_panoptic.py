"""COCO panoptic segmentation: the real on-disk format, read and written.

Layout (COCO 2017, what ``panoptic_annotations_trainval2017.zip`` + ``val2017.zip`` unpack to)::

    <root>/images/<split>2017/<12-digit id>.jpg
    <root>/annotations/panoptic_<split>2017.json
    <root>/annotations/panoptic_<split>2017/<12-digit id>.png    (COCO's folder name), or
    <root>/annotations/panoptic_segmentation/<split>2017/<12-digit id>.png
                                        (the Panoptic Narrative Grounding layout, which the shapes world writes)

The JSON holds ``images`` (id, file_name, width, height), ``annotations`` (one per image: image_id, file_name of
the PNG, segments_info [id, category_id, area, bbox [x, y, w, h], iscrowd]) and ``categories`` (id, name,
supercategory, isthing, color). A PNG pixel's segment id is ``R + 256 G + 256^2 B``; 0 is unlabelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clipxai.data._json import read_json, require
from clipxai.data.images import encode_jpeg, encode_png, image_size, read_rgb, write_bytes
from clipxai.errors import InputError
from clipxai.io import write_json

# Folders of the panoptic PNGs under annotations/: COCO's own, and the one the PNG benchmark's loaders read.
COCO_PNG_DIR = "panoptic_{split}"
PNG_BENCHMARK_DIR = "panoptic_segmentation/{split}"
_PNG_DIRS = (COCO_PNG_DIR, PNG_BENCHMARK_DIR)


def split_name(split: str) -> str:
    """``"val"`` or ``"val2017"`` -> ``"val2017"`` (the COCO folder and file suffix)."""
    return split if split.endswith("2017") else f"{split}2017"


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """Segment ids ``R + 256 G + 256^2 B`` of an ``[..., 3]`` colour array, as int32."""
    rgb = np.asarray(rgb).astype(np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rgb2id`: ``uint8 [..., 3]`` colours of int segment ids (< 256^3)."""
    ids = np.asarray(ids).astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= 256 ** 3):
        raise ValueError("panoptic segment ids must lie in [0, 256^3)")
    return np.stack([ids % 256, (ids // 256) % 256, ids // (256 * 256)], axis=-1).astype(np.uint8)


def image_path(root: str | Path, split: str, file_name: str) -> Path:
    return Path(root) / "images" / split_name(split) / file_name


def panoptic_json_path(root: str | Path, split: str) -> Path:
    return Path(root) / "annotations" / f"panoptic_{split_name(split)}.json"


def segmentation_path(root: str | Path, split: str, file_name: str) -> Path:
    """Where the panoptic PNG ``file_name`` of ``split`` lies: COCO's folder, else the PNG benchmark's folder."""
    annotations = Path(root) / "annotations"
    candidates = [annotations / pattern.format(split=split_name(split)) / file_name for pattern in _PNG_DIRS]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]


def read_segment_ids(path: str | Path) -> np.ndarray:
    """The int32 ``[H, W]`` segment-id map of a panoptic PNG."""
    return rgb2id(read_rgb(path, what="panoptic PNG"))


@dataclass
class PanopticSplit:
    """A validated panoptic JSON: images, per-image segments and categories, keyed by id."""

    root: Path
    split: str
    json_path: Path
    images: dict[int, dict]            # image id -> {"id", "file_name", "width", "height", ...}
    annotations: dict[int, dict]       # image id -> {"image_id", "file_name", "segments_info"}
    categories: dict[int, dict]        # category id -> {"id", "name", "isthing", ...}
    segments: dict[int, dict[int, dict]] = field(default_factory=dict)  # image id -> segment id -> segment info

    def image_path(self, image_id: int) -> Path:
        return image_path(self.root, self.split, self.images[image_id]["file_name"])

    def segmentation_path(self, image_id: int) -> Path:
        return segmentation_path(self.root, self.split, self.annotations[image_id]["file_name"])

    def read_segment_ids(self, image_id: int) -> np.ndarray:
        """The image's segment-id map, checked against the image's size in the JSON and on disk."""
        png_path = self.segmentation_path(image_id)
        packed = png_path.parent.with_suffix(".zip")
        if not png_path.exists() and packed.exists():
            # COCO ships the PNGs as a zip inside the annotations zip
            raise InputError(png_path, f"image {image_id}: panoptic PNG",
                             f"an extracted file ({packed.name} is still packed: unzip it in {packed.parent})")
        ids = read_segment_ids(png_path)
        info = self.images[image_id]
        height, width = ids.shape
        if (width, height) != (info["width"], info["height"]):
            raise InputError(png_path, f"image {image_id}: size",
                             f"{info['width']}x{info['height']} (the image's size in {self.json_path.name}), "
                             f"got {width}x{height}")
        jpg_path = self.image_path(image_id)
        jpg_size = image_size(jpg_path)
        if jpg_size != (width, height):
            raise InputError(png_path, f"image {image_id}: size",
                             f"{jpg_size[0]}x{jpg_size[1]} (the size of {jpg_path.name}), got {width}x{height}")
        return ids


def load(root: str | Path, split: str = "val") -> PanopticSplit:
    """Read and validate ``annotations/panoptic_<split>2017.json`` under ``root``; PNGs are read lazily."""
    root = Path(root)
    path = panoptic_json_path(root, split)
    data = read_json(path, "the COCO panoptic annotation JSON")
    if not isinstance(data, dict):
        raise InputError(path, "top level", "an object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        require(data, key, list, path, "panoptic", "a list")

    categories: dict[int, dict] = {}
    for i, cat in enumerate(data["categories"]):
        where = f"categories[{i}]"
        cat_id = require(cat, "id", int, path, where, "an integer category id")
        require(cat, "name", str, path, where, "a category name")
        require(cat, "isthing", int, path, where, "0 or 1")
        categories[cat_id] = cat

    images: dict[int, dict] = {}
    for i, info in enumerate(data["images"]):
        where = f"images[{i}]"
        image_id = require(info, "id", int, path, where, "an integer image id")
        require(info, "file_name", str, path, where, "the image file name")
        require(info, "width", int, path, where, "the image width in pixels")
        require(info, "height", int, path, where, "the image height in pixels")
        images[image_id] = info

    annotations: dict[int, dict] = {}
    segments: dict[int, dict[int, dict]] = {}
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        image_id = require(ann, "image_id", int, path, where, "an integer image id")
        require(ann, "file_name", str, path, where, "the panoptic PNG file name")
        infos = require(ann, "segments_info", list, path, where, "a list of segments")
        if image_id not in images:
            raise InputError(path, f"{where}.image_id", f"an id listed under images, got {image_id}")
        by_id: dict[int, dict] = {}
        for j, seg in enumerate(infos):
            seg_where = f"{where}.segments_info[{j}]"
            seg_id = require(seg, "id", int, path, seg_where, "an integer segment id")
            cat_id = require(seg, "category_id", int, path, seg_where, "an integer category id")
            if cat_id not in categories:
                raise InputError(path, f"{seg_where}.category_id", f"an id listed under categories, got {cat_id}")
            by_id[seg_id] = seg
        annotations[image_id] = ann
        segments[image_id] = by_id
    return PanopticSplit(root, split_name(split), path, images, annotations, categories, segments)


def segment_stats(ids: np.ndarray, segment_id: int) -> tuple[int, list[int]]:
    """``(area, [x, y, w, h])`` of one segment in an id map, as COCO stores them (w, h in pixels covered)."""
    ys, xs = np.nonzero(ids == segment_id)
    if len(xs) == 0:
        return 0, [0, 0, 0, 0]
    x0, y0 = int(xs.min()), int(ys.min())
    return int(len(xs)), [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


class PanopticWriter:
    """Write a COCO panoptic split image by image; :meth:`close` writes the JSON (last, so a crash leaves none).

    ``add(image_id, rgb, ids, segments)`` writes ``images/<split>2017/<id>.jpg`` and the id map as
    ``annotations/<png_dir>/<id>.png`` (``png_dir``: :data:`COCO_PNG_DIR` or :data:`PNG_BENCHMARK_DIR`, with
    ``{split}``); ``segments`` lists ``(segment_id, category_id)`` pairs and area and bbox are measured from ``ids``.
    """

    def __init__(self, root: str | Path, split: str, categories: list[dict], info: dict | None = None,
                 png_dir: str = COCO_PNG_DIR):
        if png_dir not in _PNG_DIRS:
            raise ValueError(f"png_dir must be one of {', '.join(_PNG_DIRS)}, got {png_dir!r}")
        self.root = Path(root)
        self.split = split_name(split)
        self.png_dir = self.root / "annotations" / png_dir.format(split=self.split)
        self.categories = categories
        self.info = info or {"description": "written by clipxai", "version": "1.0", "year": 2017}
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self._category_ids = {c["id"] for c in categories}

    def add(self, image_id: int, rgb: np.ndarray, ids: np.ndarray, segments: list[tuple[int, int]],
            iscrowd: int = 0) -> None:
        file_stem = f"{image_id:012d}"
        height, width = ids.shape
        if rgb.shape[:2] != ids.shape:
            raise ValueError(f"image {image_id}: pixels {rgb.shape[:2]} and segment ids {ids.shape} differ in size")
        segments_info = []
        for segment_id, category_id in segments:
            if category_id not in self._category_ids:
                raise ValueError(f"image {image_id}: unknown category {category_id}")
            area, bbox = segment_stats(ids, segment_id)
            if area == 0:
                raise ValueError(f"image {image_id}: segment {segment_id} has no pixels")
            segments_info.append({"id": int(segment_id), "category_id": int(category_id), "area": area,
                                  "bbox": bbox, "iscrowd": int(iscrowd)})
        write_bytes(image_path(self.root, self.split, f"{file_stem}.jpg"), encode_jpeg(rgb))
        write_bytes(self.png_dir / f"{file_stem}.png", encode_png(id2rgb(ids)))
        self.images.append({"id": int(image_id), "file_name": f"{file_stem}.jpg", "width": int(width),
                            "height": int(height), "license": 0})
        self.annotations.append({"image_id": int(image_id), "file_name": f"{file_stem}.png",
                                 "segments_info": segments_info})

    def close(self) -> Path:
        path = panoptic_json_path(self.root, self.split)
        write_json(path, {"info": self.info, "licenses": [{"id": 0, "name": "synthetic", "url": ""}],
                          "images": self.images, "annotations": self.annotations, "categories": self.categories})
        return path
