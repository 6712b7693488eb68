"""Verb ``segment-imagenet``: ImageNet-segmentation maps of one method for one shard (TextSpan paper's protocol).

``--method decomposition`` is the TextSpan map (per-patch residual terms of every layer through the zero-shot
classifier); any other name is a registry attribution method explaining the predicted class's prompt. Maps are
stored at patch-grid resolution with the image ids, the labels (when the set has them) and the predicted classes,
once per input geometry (clipxai.protocols.segmentation): ``image_grid`` / ``predicted`` for the corrected one
(square resize, aligned with the label), ``faithful_image_grid`` / ``faithful_predicted`` for the original's (the
model's resize + centre crop). A batch whose two inputs are identical (square images at the input size) is run
once and its maps stored under both names. ``clipxai score-segmentation`` scores them.
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import torch
from tqdm import tqdm

from clipxai.commands._args import add_model_arguments
from clipxai.errors import InputError
from clipxai.io import save_npz
from clipxai.commands import _args

NAME = "segment-imagenet"
HELP = "ImageNet-segmentation maps of one method (decomposition or a registry method) for one shard"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder of gtsegs_ijcv.mat (real or the shapes world's)")
    add_model_arguments(parser)
    parser.add_argument("--classifier", required=True, help="zero-shot weights .npy (its class list .json beside)")
    parser.add_argument("--method", required=True, help='"decomposition", or JSON {"method": registry name, '
                        '"params": {...}}, or a bare registry name')
    parser.add_argument("--label", default=None, help="the method's label in tables (default: its name)")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="root seed (random baseline)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    _args.add_output(parser, "--out", required=True, help="output .npz")


def run(args: argparse.Namespace) -> int:
    from clipxai import attribution
    from clipxai.protocols.grounding import parse_method
    from clipxai.commands.zeroshot_classifier import load_classifier, read_classes
    from clipxai.models.registry import load_model
    from clipxai.protocols import segmentation
    from clipxai.protocols.datasets import open_images, resolve_device, shard_rows
    from clipxai.seeding import derive_seed

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batch_size < 1:
        raise InputError("--batch-size", "value", f"a positive integer, got {args.batch_size}")
    name, params = parse_method(args.method)
    method = None
    if name != segmentation.DECOMPOSITION:
        if name == "random" and "seed" not in params:
            params["seed"] = derive_seed(args.seed, "random", "imagenet-seg", args.shard)
        method = attribution.get(name, **params)
    classes = read_classes(args.classifier)
    classifier = torch.from_numpy(load_classifier(args.classifier))
    if classifier.shape[1] != len(classes["classnames"]):
        raise InputError(args.classifier, "shape", f"one column per class of its class list "
                         f"({len(classes['classnames'])}), got {tuple(classifier.shape)}")
    data = open_images("imagenet-seg", args.data)
    rows = shard_rows(len(data), args.shard, args.shards, args.max_images)
    loaded = load_model(args.model, args.pretrained, args.checkpoint, resolve_device(args.device))
    transforms = {mode: segmentation.image_input(loaded, mode) for mode in segmentation.MODES}

    def maps_of(images):
        if method is None:
            return segmentation.decomposition_maps(loaded, images, classifier)
        return segmentation.attribution_maps(method, loaded, images, classifier, classes["classnames"],
                                             classes["attribution_prompt"])

    grids = {mode: [] for mode in segmentation.MODES}
    predicted = {mode: [] for mode in segmentation.MODES}
    reused = 0
    for start in tqdm(range(0, len(rows), args.batch_size), desc=f"segment {name}", unit="batch"):
        chunk = rows[start:start + args.batch_size]
        pictures = [data.image(i) for i in chunk]
        inputs = {mode: torch.stack([transforms[mode](picture) for picture in pictures]) for mode in transforms}
        corrected = maps_of(inputs["corrected"])
        same = inputs["faithful"].shape == inputs["corrected"].shape and torch.equal(inputs["faithful"],
                                                                                     inputs["corrected"])
        reused += len(chunk) if same else 0
        for mode, (maps, classes_of) in (("corrected", corrected),
                                         ("faithful", corrected if same else maps_of(inputs["faithful"]))):
            grids[mode].append(maps.astype(np.float32))
            predicted[mode].append(classes_of)
    gh, gw = loaded.grid

    def joined(mode):
        return (np.concatenate(grids[mode]) if grids[mode] else np.zeros((0, gh, gw), np.float32),
                np.concatenate(predicted[mode]) if predicted[mode] else np.zeros(0, np.int64))

    (grid, classes_of), (faithful_grid, faithful_classes) = joined("corrected"), joined("faithful")
    save_npz(args.out, ids=np.array([data.ids[i] for i in rows], dtype=np.str_),
             labels=data.labels[rows].astype(np.int64), predicted=classes_of, image_grid=grid,
             faithful_predicted=faithful_classes, faithful_image_grid=faithful_grid,
             image_size=np.int64(loaded.image_size), method=np.array(name), label=np.array(args.label or name),
             params=np.array(json.dumps(params, sort_keys=True)))
    log.info("%d of %d images have the same input in both geometries (their maps computed once)", reused, len(rows))
    log.info("wrote %s (%d images, method %s)", args.out, len(rows), name)
    if loaded.device.type == "cuda":
        log.info("peak GPU memory: %.1f MiB", torch.cuda.max_memory_allocated(loaded.device) / 2**20)
    return 0
