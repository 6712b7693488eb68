"""Verb ``score-segmentation``: pixAcc, mIoU and mAP of every method's ImageNet-segmentation maps.

Reads the maps of ``clipxai segment-imagenet`` (all shards of all methods; a method is its ``label``), matches each
row to its mask by id, and writes one CSV row per method: images scored, pixel accuracy, two-class mIoU (and both
classes' IoU), mAP, and the zero-shot top-1 accuracy of the predicted classes where the set has labels.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd

from clipxai.errors import InputError
from clipxai.io import write_csv
from clipxai.commands import _args

NAME = "score-segmentation"
HELP = "score ImageNet-segmentation maps (pixAcc, mIoU, mAP) of every method"
COLUMNS = ["method", "n_images", "pixel_accuracy", "miou", "iou_background", "iou_foreground", "map", "top1"]

log = logging.getLogger(__name__)


def read_maps(paths: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """label -> {ids, labels, predicted, image_grid, image_size} joined over that label's shards."""
    parts: dict[str, list[dict]] = {}
    for path in paths:
        try:
            with np.load(path, allow_pickle=False) as data:
                part = {key: data[key] for key in ("ids", "labels", "predicted", "image_grid", "image_size", "label")}
        except (OSError, KeyError, ValueError) as err:
            raise InputError(path, "ids/labels/predicted/image_grid/label",
                             f"maps written by `clipxai segment-imagenet` ({err})") from None
        parts.setdefault(str(part["label"]), []).append(part)
    joined = {}
    for label, shards in parts.items():
        ids = np.concatenate([p["ids"] for p in shards])
        if len(set(ids.tolist())) != len(ids):
            raise InputError(label, "ids", "each image once over the shards of a method")
        joined[label] = {"ids": ids, "labels": np.concatenate([p["labels"] for p in shards]),
                         "predicted": np.concatenate([p["predicted"] for p in shards]),
                         "image_grid": np.concatenate([p["image_grid"] for p in shards]),
                         "image_size": int(shards[0]["image_size"])}
    return joined


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder of gtsegs_ijcv.mat")
    _args.add_checked(parser, "--maps", nargs="+", action="extend", required=True,
                      help="maps .npz of every method and shard", check=_args.npz_file)
    _args.add_output(parser, "--out", required=True, help="output CSV, one row per method")


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols import segmentation
    from clipxai.protocols.datasets import open_images, square_mask

    data = open_images("imagenet-seg", args.data)
    row_of = data.index_of()
    methods = read_maps(args.maps)
    counts = {label: len(m["ids"]) for label, m in methods.items()}
    if len(set(counts.values())) != 1:
        raise InputError(args.maps[0], "ids", f"the same images for every method, got counts {counts}")
    mask_cache: dict[str, np.ndarray] = {}
    rows = []
    for label, maps in methods.items():
        size = maps["image_size"]
        unknown = [i for i in maps["ids"].tolist() if i not in row_of]
        if unknown:
            raise InputError(args.data, "ids", f"the ids of the maps, {unknown[0]!r} is not an image of it")

        def masks():
            for image_id in maps["ids"].tolist():
                key = f"{image_id}@{size}"
                if key not in mask_cache:
                    mask_cache[key] = square_mask(data.mask(row_of[image_id]), size)
                yield mask_cache[key]

        result = segmentation.score(maps["image_grid"], masks(), size)
        labelled = maps["labels"] >= 0
        top1 = float(np.mean(maps["predicted"][labelled] == maps["labels"][labelled])) if labelled.any() else np.nan
        rows.append({"method": label, "n_images": result["n_images"], "pixel_accuracy": result["pixel_accuracy"],
                     "miou": result["miou"], "iou_background": result["iou_background"],
                     "iou_foreground": result["iou_foreground"], "map": result["map"], "top1": top1})
        log.info("%s: %s", label, rows[-1])
    write_csv(args.out, pd.DataFrame(rows, columns=COLUMNS))
    return 0
