"""Verb ``train-toy``: train the embedded tiny CLIP on a shapes data set (contrastive loss, CPU, minutes)."""

from __future__ import annotations

import json
import logging
from dataclasses import fields

from clipxai.errors import InputError
from clipxai.io import write_json
from clipxai.commands import _args

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
    _args.add_output(parser, "--out", kind="dir", required=True, help="output folder (open_clip local-dir format)")


def check_settings(settings) -> None:
    """Every key of ``--settings`` known and of its type, before a model is built (a float width, a misspelled
    layer count would otherwise end in a TypeError inside open_clip or the training loop)."""
    import inspect

    from clipxai.models import toy
    from clipxai.models.registry import check_fields

    if not isinstance(settings, dict):
        raise InputError("--settings", "(JSON)", "a JSON object of training settings")
    unknown = sorted(set(settings) - _MODEL_KEYS)
    if unknown:
        raise InputError("--settings", unknown[0], f"one of {', '.join(sorted(_MODEL_KEYS))}")
    check_fields({k: v for k, v in settings.items() if k != "architecture"}, toy.TrainSettings, "--settings", "")
    architecture = settings.get("architecture", {})
    sizes = sorted(inspect.signature(toy.tiny_config).parameters)
    if not isinstance(architecture, dict):
        raise InputError("--settings", "architecture", f"a JSON object with keys among {', '.join(sizes)}")
    for key, value in architecture.items():
        if key not in sizes:
            raise InputError("--settings", f"architecture.{key}", f"one of {', '.join(sizes)}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError("--settings", f"architecture.{key}", f"a positive integer, got {json.dumps(value)}")


def run(args) -> int:
    from clipxai.models import toy

    try:
        settings = json.loads(args.settings)
    except json.JSONDecodeError as err:
        raise InputError("--settings", "(JSON)", f"a JSON object ({err})") from None
    check_settings(settings)
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
