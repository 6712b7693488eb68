"""The model of the zero-shot and dense-segmentation verbs (zeroshot, segment-voc): its arguments, shared by both,
and how it is loaded (CLIPpy-style configs included) on the resolved device.

A helper of the verbs (underscore module), so that neither verb imports the other.
"""

from __future__ import annotations

import argparse

import torch

from clipxai.commands import _args


def add_zeroshot_model_arguments(parser: argparse.ArgumentParser, bootstrap_help: str) -> None:
    """The bootstrap, model, device and labelling arguments shared by ``zeroshot`` and ``segment-voc``."""
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap over images (default 0)")
    parser.add_argument("--bootstrap", type=int, default=1000, help=bootstrap_help)
    _args.add_model_arguments(parser, model_help="open_clip name (e.g. ViT-B-16, clippy-B-16), model-config JSON or "
                              "model folder", pretrained_help="open_clip pretrained tag or catalogued checkpoint "
                              "(clippy_5k)", exclusive=False)  # clippy.load takes both
    parser.add_argument("--weights-stamp", default=None, help="the fetch-weights stamp (weights.json): where a "
                        "catalogued checkpoint such as clippy_5k was put")
    parser.add_argument("--device", default="auto", help="auto (the GPU if there is one), cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--workers", type=int, default=0, help="image-loading worker processes (default 0)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dataset-label", default=None, help="data set name written into the tables")
    parser.add_argument("--model-label", default=None, help="model name written into the tables")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def load_for_args(args: argparse.Namespace):
    """The model of the shared arguments (CLIPpy-style configs included), on the resolved device."""
    from clipxai.models.registry import load_model
    from clipxai.protocols.datasets import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = None if args.checkpoint is None else str(args.checkpoint)
    return load_model(args.model, args.pretrained, checkpoint, resolve_device(args.device),
                      weights_stamp=args.weights_stamp)
