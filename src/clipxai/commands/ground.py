"""Verb ``ground``: run attribution methods over one shard of a grounding data set, in both directions.

The protocol (docs/protocols.md C) is :mod:`clipxai.protocols.grounding`: text->image explains the padded image
against the phrase's utterance, image->text the image blacked out outside the phrase's mask against the narrative's
utterances joined by spaces. Maps are stored at patch-grid resolution; scoring upsamples them.

One run loads the model and the data set once and explains every ``--method`` given: ``--method A --method B
--out a.npz --out b.npz`` writes A's maps to a.npz and B's to b.npz (the i-th output is the i-th method's), each
file the one a run of that method alone would write. Nothing is written until every method has explained every
entry, and then each file atomically: a method that fails leaves no file of any method.
"""

from __future__ import annotations

import logging

import torch

from clipxai.io import save_npz
from clipxai.commands import _args

NAME = "ground"
HELP = "attribution maps of one or more methods for one shard of a grounding data set (text->image and image->text)"
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    _args.add_grounding_data_arguments(parser)
    parser.add_argument("--method", required=True, nargs="+", action="extend",
                        help='JSON {"method": registry name, "params": {...}} or a bare registry name; repeat for '
                        "several methods (one --out each, in the same order)")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--max-entries", type=int, default=0, help="only the first N entries (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    _args.add_output(parser, "--out", required=True, nargs="+", action="extend",
                     help="output .npz, one per --method (in the same order)")


def run(args) -> int:
    from clipxai.data import png
    from clipxai.models.registry import load_model
    from clipxai.protocols.datasets import resolve_device
    from clipxai.protocols.grounding import build_methods, ground_maps, shard_entries

    if args.threads:
        torch.set_num_threads(args.threads)
    # every --method is checked before any model or data is read
    _args.one_output_per_method(args.method, args.out)
    methods = build_methods(args.method, args.seed, args.data, args.split, args.shard)
    device = resolve_device(args.device)
    dataset = png.load(args.data, args.split)
    entries = shard_entries(dataset.entries, args.shard, args.shards, args.max_entries)
    lm = load_model(args.model, args.pretrained, args.checkpoint, device)
    log.info("shard %d/%d: %d entries, %d methods", args.shard, args.shards, len(entries), len(methods))
    for name, params, _ in methods:
        log.info("method %s %s", name, params)
    results = ground_maps(lm, dataset, entries, methods, args.batch_size)
    for out, maps in zip(args.out, results):
        save_npz(out, **maps.arrays(lm))
        log.info("wrote %s (%d rows, method %s)", out, len(maps.entry_id), maps.name)
    if lm.device.type == "cuda":
        log.info("peak GPU memory: %.1f MiB", torch.cuda.max_memory_allocated(lm.device) / 2**20)
    return 0
