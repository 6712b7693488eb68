"""Verb ``faithfulness``: deletion, insertion and negative-perturbation curves of one method's grounding maps.

Reads the maps `clipxai ground` wrote for a (data set, model, method), rebuilds each explained pair and perturbs it
in order of the map's relevance: image patches for text->image (replaced by a baseline image), caption tokens for
image->text (masked to padding). Writes one row per (entry, direction, curve) with the similarity per step and the
area under the curve (clipxai.protocols.faithfulness).
"""

from __future__ import annotations

import logging

from clipxai.commands._args import add_model_arguments
from clipxai.commands import _args

NAME = "faithfulness"
HELP = "perturbation curves (deletion, insertion, negative) of one method's grounding maps, both towers"
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="data set root (COCO panoptic + PNG layout)")
    parser.add_argument("--split", default="val")
    add_model_arguments(parser)
    parser.add_argument("--maps", nargs="+", action="extend", required=True, help="the method's maps .npz, every shard")
    parser.add_argument("--steps", type=int, default=10, help="perturbation steps (10 = 10%% of the parts each)")
    parser.add_argument("--baseline", default="mean", choices=("mean", "blur"),
                        help="what a removed image patch shows: the image's mean colour or a blur of the image")
    parser.add_argument("--max-entries", type=int, default=0, help="only the first N entries (0 = all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    _args.add_output(parser, "--out", required=True, help="per-entry CSV")


def run(args) -> int:
    import torch

    from clipxai.data import png
    from clipxai.errors import InputError
    from clipxai.io import write_csv
    from clipxai.models.registry import load_model
    from clipxai.protocols import faithfulness as protocol

    if args.steps < 1:
        raise InputError("--steps", "steps", f"an integer >= 1, got {args.steps}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
        "cpu" if args.device == "auto" else args.device)
    lm = load_model(args.model, args.pretrained, args.checkpoint, device)
    dataset = png.load(args.data, args.split)
    maps = protocol.select_rows(dataset, protocol.read_maps(args.maps), args.max_entries)
    log.info("%d map rows, %d steps, baseline %s", len(maps), args.steps, args.baseline)
    rows = protocol.curve_rows(lm, dataset, maps, steps=args.steps, baseline=args.baseline,
                               batch_size=args.batch_size)
    write_csv(args.out, rows)
    log.info("wrote %s (%d rows)", args.out, len(rows))
    return 0
