"""Verb ``decompose-dataset``: one shard of a labelled image set through the residual decomposition (TextSpan).

Writes a shard directory (``clipxai.models.decompose.write_shard``): per-head CLS-row terms of every layer
``attn.npy`` [n, L, H, D], ``mlp.npy`` [n, L+1, D], per-patch terms ``spatial.npy`` only for the layers asked for,
and ``labels.npy`` / ``ids.npy`` read from the data set's own annotation, with ``meta.json`` written last.
"""

from __future__ import annotations

import argparse
import logging

import torch

from clipxai.commands._args import add_image_set_arguments, add_model_arguments
from clipxai.errors import InputError
from clipxai.commands import _args

NAME = "decompose-dataset"
HELP = "decompose one shard of a labelled image set (ImageNet, ImageNet-seg, Waterbirds) into head terms"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_set_arguments(parser)
    parser.add_argument("--split", default="val", help="split (Waterbirds: train, val, test)")
    add_model_arguments(parser)
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--max-images", type=int, default=0, help="only the first N images of the split (0 = all)")
    parser.add_argument("--spatial-layers", default="", help="comma-separated blocks (negative: from the end) "
                        "whose per-patch terms are stored; empty = none")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    _args.add_output(parser, "--out", kind="dir", required=True, help="output shard directory")


def run(args: argparse.Namespace) -> int:
    from clipxai.commands._args import parse_layers
    from clipxai.models.decompose import write_shard
    from clipxai.models.registry import load_model
    from clipxai.protocols.datasets import model_input, open_images, resolve_device, shard_rows

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batch_size < 1:
        raise InputError("--batch-size", "value", f"a positive integer, got {args.batch_size}")
    layers = parse_layers(args.spatial_layers)
    data = open_images(args.format, args.data, args.split, args.devkit)
    rows = shard_rows(len(data), args.shard, args.shards, args.max_images)
    if not rows:
        raise InputError(args.data, f"{args.split} shard {args.shard}/{args.shards}", "at least one image")
    loaded = load_model(args.model, args.pretrained, args.checkpoint, resolve_device(args.device))
    transform = model_input(args.format, loaded)

    def batches():
        for start in range(0, len(rows), args.batch_size):
            chunk = rows[start:start + args.batch_size]
            images = torch.stack([transform(data.image(i)) for i in chunk])
            yield images, data.labels[chunk], [data.ids[i] for i in chunk]

    write_shard(args.out, loaded.model, batches(), len(rows), layers)
    log.info("decomposed %d images of %s/%s (shard %d/%d) into %s", len(rows), args.data, args.split, args.shard,
             args.shards, args.out)
    if loaded.device.type == "cuda":
        log.info("peak GPU memory: %.1f MiB", torch.cuda.max_memory_allocated(loaded.device) / 2**20)
    return 0
