"""PASCAL VOC 2012 semantic segmentation: the real layout, read and written.

Layout (``VOCtrainval_11-May-2012.tar`` unpacks to it)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png        palette PNG: pixel = class index, 255 = void
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt   one id per line

The label PNGs use VOC's colour map (class 1 = (128, 0, 0), ..., 255 = (224, 224, 192)), and the pixel values are
the palette indices, so reading them in mode ``P`` gives class indices directly. Objects are outlined by a band
of void (255) pixels, which evaluation ignores. A ``class_names.txt`` beside ``ImageSets`` (written for synthetic
sets; the real set has none) overrides the 21 VOC names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image

from clipxai.data.images import encode_jpeg, encode_png, read_image, read_rgb, write_bytes
from clipxai.errors import InputError
from clipxai.io import write_text

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
VOID = 255


def palette() -> list[int]:
    """VOC's 256-entry colour map as a flat ``[r0, g0, b0, r1, ...]`` list (bits of the index spread over RGB)."""
    colours = []
    for index in range(256):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colours += [r, g, b]
    return colours


def void_borders(label: np.ndarray, width: int = 1) -> np.ndarray:
    """``label`` with pixels within ``width`` of a boundary between two classes set to void (255), as VOC does.

    A pixel is on a boundary when a 4-neighbour has another label (both sides are marked: scikit-image's
    ``find_boundaries``, mode ``thick``); ``width`` > 1 grows that band by 4-connected steps (a diamond)."""
    from skimage.morphology import diamond, dilation
    from skimage.segmentation import find_boundaries

    boundary = find_boundaries(label, connectivity=1, mode="thick")
    if width > 1:
        boundary = dilation(boundary, diamond(width - 1))
    out = label.copy()
    out[boundary] = VOID
    return out


def voc_root(root: str | Path) -> Path:
    """``VOCdevkit/VOC2012`` under ``root``; ``root`` may also be ``VOCdevkit`` or ``VOC2012`` itself."""
    root = Path(root)
    for candidate in (root / "VOCdevkit" / "VOC2012", root / "VOC2012", root):
        if (candidate / "ImageSets" / "Segmentation").is_dir():
            return candidate
    raise InputError(root, "layout", "VOCdevkit/VOC2012/ImageSets/Segmentation (PASCAL VOC 2012)")


@dataclass
class VOCSegmentation:
    """The ids of one split and lazy access to (id, image uint8 [H,W,3], label uint8 [H,W])."""

    root: Path                       # .../VOC2012
    split: str
    ids: list[str]
    class_names: tuple[str, ...] = field(default=VOC_CLASSES)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray, np.ndarray]:
        image_id = self.ids[index]
        image = read_rgb(self.root / "JPEGImages" / f"{image_id}.jpg", what=f"{self.split} id {image_id}: image")
        label_path = self.root / "SegmentationClass" / f"{image_id}.png"
        label_image = read_image(label_path, what=f"{self.split} id {image_id}: label")
        if label_image.mode not in ("P", "L"):
            raise InputError(label_path, f"{self.split} id {image_id}: label",
                             f"a palette (mode P) PNG of class indices, got mode {label_image.mode}")
        label = np.asarray(label_image, dtype=np.uint8)
        if label.shape != image.shape[:2]:
            raise InputError(label_path, f"{self.split} id {image_id}: size",
                             f"{image.shape[1]}x{image.shape[0]} like the image, got {label.shape[1]}x{label.shape[0]}")
        bad = (label >= len(self.class_names)) & (label != VOID)
        if bad.any():
            raise InputError(label_path, f"{self.split} id {image_id}: label",
                             f"class indices below {len(self.class_names)} or 255, got {int(label[bad][0])}")
        return image_id, image, label

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for index in range(len(self)):
            yield self[index]


# Images per split of the real PASCAL VOC 2012 segmentation lists: a copy with fewer (a subset, a rehearsal mirror)
# is scored as a partial run, whatever share of its own list was scored.
VOC2012_SPLIT_IMAGES = {"train": 1464, "val": 1449, "trainval": 2913}


def load(root: str | Path, split: str = "val") -> VOCSegmentation:
    """Read a split's id list (and ``class_names.txt`` if present); images and labels are read lazily."""
    base = voc_root(root)
    list_path = base / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not list_path.exists():
        raise InputError(list_path, "file", f"the id list of split {split!r}")
    ids = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]
    names_path = base / "class_names.txt"
    class_names = VOC_CLASSES
    if names_path.exists():
        class_names = tuple(line.strip() for line in names_path.read_text().splitlines() if line.strip())
    for image_id in ids:  # every listed id needs both files; say which is missing before any work starts
        for folder, suffix in (("JPEGImages", ".jpg"), ("SegmentationClass", ".png")):
            if not (base / folder / f"{image_id}{suffix}").exists():
                raise InputError(list_path, f"id {image_id}", f"{folder}/{image_id}{suffix} to exist")
    return VOCSegmentation(root=base, split=split, ids=ids, class_names=class_names)


def label_png(label: np.ndarray) -> bytes:
    """PNG bytes of a class-index label as a palette image with VOC's colour map."""
    label = np.ascontiguousarray(label, dtype=np.uint8)
    image = Image.frombytes("P", (label.shape[1], label.shape[0]), label.tobytes())  # indices kept as they are
    image.putpalette(palette())
    return encode_png(image)


def write(root: str | Path, splits: dict[str, Iterable[tuple[str, np.ndarray, np.ndarray]]],
          class_names: Iterable[str] | None = None) -> Path:
    """Write ``{split: [(id, rgb, label), ...]}`` in VOC layout under ``root/VOCdevkit/VOC2012``; return that path.

    Also writes ``trainval.txt`` when both ``train`` and ``val`` are given, and ``class_names.txt`` if given.
    """
    base = Path(root) / "VOCdevkit" / "VOC2012"
    lists: dict[str, list[str]] = {}
    for split, samples in splits.items():
        lists[split] = []
        for image_id, rgb, label in samples:
            if label.shape != rgb.shape[:2]:
                raise ValueError(f"{image_id}: label {label.shape} and image {rgb.shape[:2]} differ in size")
            write_bytes(base / "JPEGImages" / f"{image_id}.jpg", encode_jpeg(rgb))
            write_bytes(base / "SegmentationClass" / f"{image_id}.png", label_png(label))
            lists[split].append(image_id)
    if "train" in lists and "val" in lists:
        lists["trainval"] = lists["train"] + lists["val"]
    if class_names is not None:
        write_text(base / "class_names.txt", "".join(f"{name}\n" for name in class_names))
    for split, ids in lists.items():
        write_text(base / "ImageSets" / "Segmentation" / f"{split}.txt", "".join(f"{i}\n" for i in ids))
    return base
