"""Verb ``train-toy``: train the embedded tiny CLIP on a shapes data set (contrastive loss, CPU, minutes)."""

from __future__ import annotations

import json
import logging
from dataclasses import fields

from clipxai.errors import InputError
from clipxai.io import write_json

NAME = "train-toy"
HELP = "train the tiny open_clip CLIP of the embedded default on a shapes data set"
log = logging.getLogger(__name__)

_MODEL_KEYS = {"steps", "batch_size", "lr", "hard_negatives", "architecture", "weight_decay", "warmup"}


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="shapes data set root (COCO panoptic + PNG layout)")
    parser.add_argument("--settings", default="{}",
                        help='JSON of training settings: steps, batch_size, lr, hard_negatives, architecture {...}')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True, help="output folder (open_clip local-dir format)")


def run(args) -> int:
    from clipxai.models import toy

    try:
        settings = json.loads(args.settings)
    except json.JSONDecodeError as err:
        raise InputError("--settings", "(JSON)", f"a JSON object ({err})") from None
    unknown = sorted(set(settings) - _MODEL_KEYS)
    if unknown:
        raise InputError("--settings", unknown[0], f"one of {', '.join(sorted(_MODEL_KEYS))}")
    config = toy.tiny_config(**settings.pop("architecture", {}))
    known = {f.name for f in fields(toy.TrainSettings)}
    train_settings = toy.TrainSettings(seed=args.seed, threads=args.threads,
                                       **{k: v for k, v in settings.items() if k in known})
    narratives = toy.narratives_from_png(args.data, "train")
    if not narratives:
        raise InputError(args.data, "train split", "at least one narrative")
    summary = toy.train(config, narratives, train_settings, args.out)
    write_json(f"{args.out}/train_summary.json", summary)
    log.info("trained: %s", summary)
    return 0
