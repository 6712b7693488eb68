"""Verb ``score-segmentation``: pixAcc, mIoU and mAP of every method's ImageNet-segmentation maps, in both modes.

Reads the maps of ``clipxai segment-imagenet`` (all shards of all methods; a method is its ``label``), matches each
row to its mask by id, and writes one CSV row per method and mode (faithful: the original's input geometry and its
NaN for a constant map; corrected: aligned geometry, a constant map is all background; clipxai.protocols.
segmentation): images scored, pixel accuracy, two-class mIoU (and both classes' IoU), mAP, the zero-shot top-1
accuracy of the predicted classes where the set has labels, and the registry method and parameters behind the label.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd

from clipxai.artifacts.tables import SEGMENTATION_SCORE_COLUMNS
from clipxai.errors import InputError
from clipxai.io import write_csv
from clipxai.commands import _args

NAME = "score-segmentation"
HELP = "score ImageNet-segmentation maps (pixAcc, mIoU, mAP) of every method"
COLUMNS = SEGMENTATION_SCORE_COLUMNS
MAP_KEYS = ("ids", "labels", "predicted", "image_grid", "faithful_predicted", "faithful_image_grid", "image_size",
            "label", "method", "params")

log = logging.getLogger(__name__)


def read_maps(paths: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """label -> {ids, labels, image_size, method, params, and per mode its grids and predicted classes} joined over
    that label's shards."""
    parts: dict[str, list[dict]] = {}
    for path in paths:
        try:
            with np.load(path, allow_pickle=False) as data:
                part = {key: data[key] for key in MAP_KEYS}
        except (OSError, KeyError, ValueError) as err:
            raise InputError(path, "/".join(MAP_KEYS), f"maps written by `clipxai segment-imagenet` ({err})") from None
        parts.setdefault(str(part["label"]), []).append(part)
    joined = {}
    for label, shards in parts.items():
        ids = np.concatenate([p["ids"] for p in shards])
        if len(set(ids.tolist())) != len(ids):
            raise InputError(label, "ids", "each image once over the shards of a method")
        joined[label] = {"ids": ids, "labels": np.concatenate([p["labels"] for p in shards]),
                         "image_size": int(shards[0]["image_size"]), "method": str(shards[0]["method"]),
                         "params": str(shards[0]["params"])}
        for mode, prefix in (("corrected", ""), ("faithful", "faithful_")):
            joined[label][mode] = {"predicted": np.concatenate([p[f"{prefix}predicted"] for p in shards]),
                                   "image_grid": np.concatenate([p[f"{prefix}image_grid"] for p in shards])}
    return joined


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder of gtsegs_ijcv.mat")
    _args.add_checked(parser, "--maps", nargs="+", action="extend", required=True,
                      help="maps .npz of every method and shard", check=_args.npz_file)
    _args.add_output(parser, "--out", required=True, help="output CSV, one row per method and mode")


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols import segmentation
    from clipxai.protocols.datasets import open_images

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
            # the label is the same in both modes: the whole mask resized to the square input
            for image_id in maps["ids"].tolist():
                key = f"{image_id}@{size}"
                if key not in mask_cache:
                    mask_cache[key] = segmentation.label_mask(data.mask(row_of[image_id]), size)
                yield mask_cache[key]

        labelled = maps["labels"] >= 0
        for mode in segmentation.MODES:
            result = segmentation.score(maps[mode]["image_grid"], masks(), size, mode)
            hits = maps[mode]["predicted"][labelled] == maps["labels"][labelled]
            rows.append({"method": label, "mode": mode, "n_images": result["n_images"],
                         "pixel_accuracy": result["pixel_accuracy"], "miou": result["miou"],
                         "iou_background": result["iou_background"], "iou_foreground": result["iou_foreground"],
                         "map": result["map"], "top1": float(np.mean(hits)) if labelled.any() else np.nan,
                         "registry_method": maps["method"], "params": maps["params"]})
            log.info("%s: %s", label, rows[-1])
    write_csv(args.out, pd.DataFrame(rows, columns=COLUMNS))
    return 0
