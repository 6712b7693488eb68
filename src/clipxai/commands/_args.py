"""Arguments several verbs share, declared once so every verb names and documents them the same way."""

from __future__ import annotations

import argparse


def add_model_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """``--model`` plus either ``--pretrained`` or ``--checkpoint`` (see clipxai.models.registry.load_model)."""
    parser.add_argument("--model", required=required, help="open_clip model name, model-config JSON or model folder")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", default=None, help="open_clip pretrained tag")
    weights.add_argument("--checkpoint", default=None, help="local state dict (.pt/.safetensors)")


def add_image_set_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--format`` and ``--devkit`` of the verbs that open a labelled image set (clipxai.heads.data)."""
    parser.add_argument("--data", required=True, help="data set root")
    parser.add_argument("--format", required=True, choices=("imagenet", "imagenet-seg", "waterbirds"),
                        help="on-disk format of the data set (real or the shapes world's)")
    parser.add_argument("--devkit", help="ImageNet: the ILSVRC2012_devkit_t12 folder if not beside --data")
