"""Verb ``segment-imagenet``: ImageNet-segmentation maps of one or more methods for one shard (TextSpan paper's
protocol).

``--method decomposition`` is the TextSpan map (per-patch residual terms of every layer through the zero-shot
classifier); any other name is a registry attribution method explaining the predicted class's prompt. Maps are
stored at patch-grid resolution with the image ids, the labels (when the set has them) and the predicted classes,
once per input geometry (clipxai.protocols.segmentation): ``image_grid`` / ``predicted`` for the corrected one
(square resize, aligned with the label), ``faithful_image_grid`` / ``faithful_predicted`` for the original's (the
model's resize + centre crop). A batch whose two inputs are identical (square images at the input size) is run
once and its maps stored under both names. ``clipxai score-segmentation`` scores them.

One run loads the model, the classifier and the images once and runs every ``--method`` given: ``--method A
--method B --label a --label b --out a.npz --out b.npz`` (the i-th label and output are the i-th method's) writes
each file a run of that method alone would write (:func:`clipxai.protocols.segmentation.batch_maps`). Nothing is
written until every method has mapped every image, then each file atomically: a method that fails leaves no file.
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
HELP = "ImageNet-segmentation maps of one or more methods (decomposition or registry methods) for one shard"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder of gtsegs_ijcv.mat (real or the shapes world's)")
    add_model_arguments(parser)
    parser.add_argument("--classifier", required=True, help="zero-shot weights .npy (its class list .json beside)")
    parser.add_argument("--method", required=True, nargs="+", action="extend",
                        help='"decomposition", or JSON {"method": registry name, "params": {...}}, or a bare '
                        "registry name; repeat for several methods (one --out each, in the same order)")
    parser.add_argument("--label", nargs="+", action="extend", default=None,
                        help="each method's label in tables, one per --method in the same order (default: its name)")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="root seed (random baseline)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    _args.add_output(parser, "--out", required=True, nargs="+", action="extend",
                     help="output .npz, one per --method (in the same order)")


def build_methods(args: argparse.Namespace) -> list:
    """Every ``--method`` as a :class:`clipxai.protocols.segmentation.SegmentationMethod` (in order, one per
    ``--out``), checked before any model or data is read."""
    from clipxai import attribution
    from clipxai.protocols import segmentation
    from clipxai.protocols.grounding import parse_method
    from clipxai.seeding import derive_seed

    _args.one_output_per_method(args.method, args.out)
    if args.label is not None and len(args.label) != len(args.method):
        raise InputError("--label", "count", f"one label per --method ({len(args.method)}), got {len(args.label)}")
    methods = []
    for i, text in enumerate(args.method):
        name, params = parse_method(text)
        method = None
        if name != segmentation.DECOMPOSITION:
            if name == "random" and "seed" not in params:
                # keyed by method name and shard (not label): the seed a run of the method alone draws
                params["seed"] = derive_seed(args.seed, "random", "imagenet-seg", args.shard)
            method = attribution.get(name, **params)
        label = args.label[i] if args.label is not None else name
        methods.append(segmentation.SegmentationMethod(name, params, label or name, method))
    return methods


def run(args: argparse.Namespace) -> int:
    from clipxai.artifacts.classifier import load_classifier, read_classes
    from clipxai.models.registry import load_model
    from clipxai.protocols import segmentation
    from clipxai.protocols.datasets import open_images, resolve_device, shard_rows

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batch_size < 1:
        raise InputError("--batch-size", "value", f"a positive integer, got {args.batch_size}")
    methods = build_methods(args)
    classes = read_classes(args.classifier)
    classifier = torch.from_numpy(load_classifier(args.classifier))
    if classifier.shape[1] != len(classes["classnames"]):
        raise InputError(args.classifier, "shape", f"one column per class of its class list "
                         f"({len(classes['classnames'])}), got {tuple(classifier.shape)}")
    data = open_images("imagenet-seg", args.data)
    rows = shard_rows(len(data), args.shard, args.shards, args.max_images)
    loaded = load_model(args.model, args.pretrained, args.checkpoint, resolve_device(args.device))
    transforms = {mode: segmentation.image_input(loaded, mode) for mode in segmentation.MODES}
    log.info("shard %d/%d: %d images, %d methods", args.shard, args.shards, len(rows), len(methods))
    for spec in methods:
        log.info("method %s (%s) %s", spec.label, spec.name, spec.params)

    grids = [{mode: [] for mode in segmentation.MODES} for _ in methods]
    predicted = [{mode: [] for mode in segmentation.MODES} for _ in methods]
    reused = 0
    for start in tqdm(range(0, len(rows), args.batch_size), desc=f"segment {len(methods)} methods", unit="batch"):
        chunk = rows[start:start + args.batch_size]
        pictures = [data.image(i) for i in chunk]
        inputs = {mode: torch.stack([transforms[mode](picture) for picture in pictures]) for mode in transforms}
        same = inputs["faithful"].shape == inputs["corrected"].shape and torch.equal(inputs["faithful"],
                                                                                     inputs["corrected"])
        reused += len(chunk) if same else 0
        corrected = segmentation.batch_maps(methods, loaded, inputs["corrected"], classifier, classes["classnames"],
                                            classes["attribution_prompt"])
        faithful = corrected if same else segmentation.batch_maps(
            methods, loaded, inputs["faithful"], classifier, classes["classnames"], classes["attribution_prompt"])
        for i in range(len(methods)):
            for mode, (maps, classes_of) in (("corrected", corrected[i]), ("faithful", faithful[i])):
                grids[i][mode].append(maps.astype(np.float32))
                predicted[i][mode].append(classes_of)
    gh, gw = loaded.grid

    def joined(i, mode):
        return (np.concatenate(grids[i][mode]) if grids[i][mode] else np.zeros((0, gh, gw), np.float32),
                np.concatenate(predicted[i][mode]) if predicted[i][mode] else np.zeros(0, np.int64))

    ids = np.array([data.ids[i] for i in rows], dtype=np.str_)
    labels = data.labels[rows].astype(np.int64)
    # every method has explained every image: only now is anything written, each file atomically
    for i, (spec, out) in enumerate(zip(methods, args.out)):
        (grid, classes_of), (faithful_grid, faithful_classes) = joined(i, "corrected"), joined(i, "faithful")
        save_npz(out, ids=ids, labels=labels, predicted=classes_of, image_grid=grid,
                 faithful_predicted=faithful_classes, faithful_image_grid=faithful_grid,
                 image_size=np.int64(loaded.image_size), method=np.array(spec.name), label=np.array(spec.label),
                 params=np.array(json.dumps(spec.params, sort_keys=True)))
        log.info("wrote %s (%d images, method %s)", out, len(rows), spec.label)
    log.info("%d of %d images have the same input in both geometries (their maps computed once)", reused, len(rows))
    if loaded.device.type == "cuda":
        log.info("peak GPU memory: %.1f MiB", torch.cuda.max_memory_allocated(loaded.device) / 2**20)
    return 0
