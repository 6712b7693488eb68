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
written until every method has mapped every image (:func:`clipxai.protocols.imagenet_seg.map_shard`), then each
file atomically: a method that fails leaves no file.
"""

from __future__ import annotations

import argparse
import logging

import torch

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


def run(args: argparse.Namespace) -> int:
    from clipxai.models.registry import load_model
    from clipxai.protocols import imagenet_seg
    from clipxai.protocols.datasets import open_images, resolve_device, shard_rows

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batch_size < 1:
        raise InputError("--batch-size", "value", f"a positive integer, got {args.batch_size}")
    _args.one_output_per_method(args.method, args.out)
    methods = imagenet_seg.build_methods(args.method, args.label, args.seed, args.shard)
    classes, classifier = imagenet_seg.read_classifier(args.classifier)
    data = open_images("imagenet-seg", args.data)
    rows = shard_rows(len(data), args.shard, args.shards, args.max_images)
    loaded = load_model(args.model, args.pretrained, args.checkpoint, resolve_device(args.device))
    log.info("shard %d/%d: %d images, %d methods", args.shard, args.shards, len(rows), len(methods))
    for spec in methods:
        log.info("method %s (%s) %s", spec.label, spec.name, spec.params)
    outputs, reused = imagenet_seg.map_shard(methods, loaded, data, rows, classifier, classes, args.batch_size)
    # every method has explained every image: only now is anything written, each file atomically
    for spec, out, arrays in zip(methods, args.out, outputs):
        save_npz(out, **arrays)
        log.info("wrote %s (%d images, method %s)", out, len(rows), spec.label)
    log.info("%d of %d images have the same input in both geometries (their maps computed once)", reused, len(rows))
    if loaded.device.type == "cuda":
        log.info("peak GPU memory: %.1f MiB", torch.cuda.max_memory_allocated(loaded.device) / 2**20)
    return 0
