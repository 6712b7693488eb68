"""The labelled image sets of the heads protocols, read one way: ImageNet val, ImageNet-segmentation, Waterbirds.

Each is read by its own data module (clipxai.data.imagenet / imagenet_seg / waterbirds) whether it is the real data
set or the shapes world written in its format; this module only gives them one face: row ``i`` has an ``id`` (a
string that finds the image again), a ``label`` (class index, -1 when the set has none: the real ImageNet-seg
file), and for Waterbirds a ``place``. Labels always come from the data set's own annotation (folder / devkit,
``gtsegs_ijcv_labels.json``, ``metadata.csv``), never from file order, and are stored beside every decomposition.

Class names for zero-shot classifiers come from the data set too: ImageNet's 1,000 (open_clip's names, in the
sorted-wnid order both use), a shapes set's own ``classnames.txt`` / labels file, Waterbirds' two bird classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from clipxai.data.kinds import FORMATS as FORMAT_TABLE, formats_serving, resolve
from clipxai.data.labelled import LabelledImages, check_split as _check_split, read_json as _read_json
from clipxai.errors import InputError

# the on-disk formats (make-shapes --format names) of the kinds the heads protocols read: imagenet, imagenet-seg,
# waterbirds
FORMATS = formats_serving("heads-explain")
WATERBIRDS_CLASSES = ("landbird", "waterbird")
WATERBIRDS_PLACES = ("land", "water")


def open_imagenet(root: Path, split: str, devkit: str | Path | None = None) -> LabelledImages:
    from clipxai.data import imagenet
    from clipxai.data.images import read_image
    from clipxai.models.zeroshot import imagenet_classnames

    _check_split("imagenet", root, split, ("val",))
    data = imagenet.load(root, devkit)
    # The real set's 1,000 classes are named as open_clip's zero-shot evaluation names them (same sorted-wnid
    # order); a smaller set (the shapes world's class folders) brings its own names.
    names = imagenet_classnames() if len(data.wnids) == imagenet.N_CLASSES else list(data.class_names or data.wnids)
    paths = [path for path, _ in data.samples]
    ids = [str(path.relative_to(root)) if path.is_relative_to(root) else str(path) for path in paths]
    labels = np.array([label for _, label in data.samples], dtype=np.int64)
    return LabelledImages("imagenet", root, split, ids, labels, names,
                          load=lambda i: read_image(paths[i]).convert("RGB"))


def open_imagenet_seg(root: Path, split: str, devkit: str | Path | None = None) -> LabelledImages:
    from clipxai.data import imagenet_seg
    from clipxai.models.zeroshot import imagenet_classnames

    _check_split("imagenet-seg", root, split, ("val",))
    data = imagenet_seg.load(root)
    folder = data.path.parent
    labels = np.full(len(data), -1, dtype=np.int64)
    names = imagenet_classnames()
    labels_file = folder / "gtsegs_ijcv_labels.json"
    if labels_file.is_file():  # written beside the shapes world's file; the real file has no labels
        meta = _read_json(labels_file, "ImageNet-segmentation labels")
        names = list(meta.get("classes", []))
        per_image = meta.get("labels", [])
        if len(per_image) != len(data):
            raise InputError(labels_file, "labels", f"one class name per image of {data.path} ({len(data)}), "
                             f"got {len(per_image)}")
        index = {name: i for i, name in enumerate(names)}
        unknown = [name for name in per_image if name not in index]
        if unknown:
            raise InputError(labels_file, "labels", f"names listed under classes, {unknown[0]!r} is not")
        labels = np.array([index[name] for name in per_image], dtype=np.int64)
    return LabelledImages("imagenet-seg", root, split, [str(i) for i in range(len(data))], labels, names,
                          load=lambda i: Image.fromarray(data[i][0]), load_mask=lambda i: data[i][1])


def open_waterbirds(root: Path, split: str, devkit: str | Path | None = None) -> LabelledImages:
    from clipxai.data import waterbirds
    from clipxai.data.images import read_image

    _check_split("waterbirds", root, split, tuple(waterbirds.SPLITS))
    records = waterbirds.load(root, split)
    if not records:
        raise InputError(root / "metadata.csv", f"{split} split", "at least one image")
    names, places = list(WATERBIRDS_CLASSES), WATERBIRDS_PLACES
    world = root / "shapes_world.json"
    if world.is_file():  # the shapes Waterbirds: its bird classes are shapes, its places backgrounds
        meta = _read_json(world, "the shapes world's description")
        names = list(meta.get("y_names", names))
        places = tuple(meta.get("place_names", places))
    return LabelledImages("waterbirds", root, split, [str(r.img_id) for r in records],
                          np.array([r.y for r in records], dtype=np.int64), names,
                          load=lambda i: read_image(records[i].path).convert("RGB"),
                          places=np.array([r.place for r in records], dtype=np.int64), place_names=places)


def open_images(format_: str, root: str | Path, split: str = "val", devkit: str | Path | None = None
                ) -> LabelledImages:
    """One split of a labelled image set in ``format_`` (imagenet, imagenet-seg, waterbirds) under ``root``;
    ``devkit``: ImageNet's devkit folder when it is not beside ``root``."""
    root = Path(root)
    if format_ not in FORMATS:
        raise InputError(root, "format", f"one of {', '.join(FORMATS)}, got {format_!r}")
    return resolve(FORMAT_TABLE[format_].reader)(root, split, devkit)


def shard_rows(n_rows: int, shard: int, shards: int, max_rows: int = 0) -> list[int]:
    """Rows of one shard: row i belongs to shard i mod shards (of the first ``max_rows`` rows, 0 = all)."""
    if shards < 1 or not 0 <= shard < shards:
        raise InputError("--shard", "shard", f"0 <= shard < shards (shards >= 1), got {shard} of {shards}")
    if max_rows < 0:
        raise InputError("--max-images", "value", f"a non-negative count, got {max_rows}")
    stop = min(n_rows, max_rows) if max_rows else n_rows
    return list(range(shard, stop, shards))


def square_input(loaded) -> Callable[[Image.Image], torch.Tensor]:
    """The ImageNet-segmentation input transform: resize to the model's square input (no crop, so the map and
    the mask resized the same way stay aligned), then the model's own normalisation."""
    size = loaded.image_size
    mean = torch.tensor(loaded.mean, dtype=torch.float32)[:, None, None]
    std = torch.tensor(loaded.std, dtype=torch.float32)[:, None, None]

    def transform(image: Image.Image) -> torch.Tensor:
        resized = image.convert("RGB").resize((size, size), Image.BILINEAR)
        pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (pixels - mean) / std

    return transform


def square_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A binary mask resized (nearest) to ``size`` x ``size``, as the segmentation protocol resizes its targets."""
    resized = Image.fromarray((np.asarray(mask) > 0).astype(np.uint8) * 255).resize((size, size), Image.NEAREST)
    return np.asarray(resized) > 127


def model_input(format_: str, loaded) -> Callable[[Image.Image], torch.Tensor]:
    """How images of ``format_`` enter the model: square resize for segmentation, the model's own eval transform
    (resize + centre crop) otherwise."""
    return square_input(loaded) if format_ == "imagenet-seg" else loaded.preprocess


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU this job was given (SLURM/CUDA set CUDA_VISIBLE_DEVICES), else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device", "device", "cpu or auto: this machine has no CUDA device")
    return torch.device(name)
