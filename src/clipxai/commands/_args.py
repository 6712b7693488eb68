"""Arguments several verbs share, declared once so every verb names and documents them the same way."""

from __future__ import annotations

import argparse


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` plus either ``--pretrained`` or ``--checkpoint`` (see clipxai.models.registry.load_model)."""
    parser.add_argument("--model", required=True, help="open_clip model name, model-config JSON or model folder")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", default=None, help="open_clip pretrained tag")
    weights.add_argument("--checkpoint", default=None, help="local state dict (.pt/.safetensors)")
