"""Verb ``zeroshot-classifier``: the zero-shot weights of a model for the classes of a labelled image set.

Class names come from the data set (clipxai.protocols.datasets). Prompts: ``openai`` = OpenAI's 80 ImageNet
templates (the papers' models), ``caption`` = "a {class}" (the toy CLIP: its captions never say "a photo of").
Writes ``classifier.npy`` [D, classes] and beside it a JSON with the class names, the templates and the one prompt
per class that attribution methods are given as text.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from clipxai.commands._args import add_image_set_arguments, add_model_arguments
from clipxai.errors import InputError
from clipxai.io import atomic_path, write_json
from clipxai.commands import _args

NAME = "zeroshot-classifier"
HELP = "zero-shot classifier weights [D, classes] for the classes of an image set"
TEMPLATES = ("openai", "caption")
# The single prompt an attribution method explains (it needs one text, not a mean over templates).
ATTRIBUTION_PROMPT = {"openai": "a photo of a {}.", "caption": "a {}"}

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_set_arguments(parser)
    parser.add_argument("--split", default=None, help="a split to open the set by (default: val, Waterbirds test)")
    add_model_arguments(parser)
    parser.add_argument("--templates", choices=TEMPLATES, default="openai")
    parser.add_argument("--max-templates", type=_args.non_negative_int, default=0, metavar="N",
                        help="only the first N templates (0 = all; fewer is a partial run, recorded in the JSON)")
    parser.add_argument("--device", default="auto")
    _args.add_output(parser, "--out", required=True, help="output .npy (a .json with the class names goes beside it)")


def templates_of(name: str) -> list:
    """The prompt templates: callables from open_clip's metadata (openai) or format strings."""
    from clipxai.models import zeroshot

    if name not in TEMPLATES:
        raise InputError("--templates", "value", f"one of {', '.join(TEMPLATES)}, got {name!r}")
    return zeroshot.openai_templates() if name == "openai" else ["a {}"]


def run(args: argparse.Namespace) -> int:
    from clipxai.models import zeroshot
    from clipxai.models.registry import load_model
    from clipxai.protocols.datasets import open_images, resolve_device

    split = args.split or ("test" if args.format == "waterbirds" else "val")
    names = open_images(args.format, args.data, split, args.devkit).classnames
    loaded = load_model(args.model, args.pretrained, args.checkpoint, resolve_device(args.device))
    templates = templates_of(args.templates)
    n_all = len(templates)
    templates = templates[:args.max_templates] if args.max_templates else templates
    weights = zeroshot.classifier(loaded.model, loaded.tokenizer, names, templates)
    with atomic_path(args.out) as tmp:
        with open(tmp, "wb") as handle:  # a handle: np.save would append ".npy" to the temp name
            np.save(handle, weights.cpu().numpy().astype(np.float32))
    write_json(Path(args.out).with_suffix(".json"), {
        "classnames": names, "templates": args.templates, "n_templates": len(templates),
        "complete": len(templates) == n_all, "attribution_prompt": ATTRIBUTION_PROMPT[args.templates]})
    log.info("zero-shot classifier for %d classes (%d of %d %s templates) -> %s", len(names), len(templates), n_all,
             args.templates, args.out)
    return 0
