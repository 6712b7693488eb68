"""The model of the zero-shot and dense-segmentation verbs (zeroshot, segment-voc): its arguments, shared by both,
and how it is loaded (CLIPpy-style configs included) on the resolved device.

A helper of the verbs (underscore module), so that neither verb imports the other.
"""

from __future__ import annotations

import argparse

import torch

from clipxai.commands import _args
from clipxai.errors import InputError


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, device and labelling arguments shared by ``zeroshot`` and ``segment-voc``."""
    _args.add_checked(parser, "--model", required=True,
                      help="open_clip name (e.g. ViT-B-16, clippy-B-16), model-config JSON or model folder",
                      check=_args.model_source)
    parser.add_argument("--pretrained", default=None, help="open_clip pretrained tag or catalogued checkpoint "
                        "(clippy_5k)")
    _args.add_checked(parser, "--checkpoint", default=None, help="local state dict (.pt/.safetensors)",
                      check=_args.checkpoint_file)
    parser.add_argument("--weights-stamp", default=None, help="the fetch-weights stamp (weights.json): where a "
                        "catalogued checkpoint such as clippy_5k was put")
    parser.add_argument("--device", default="auto", help="auto (the GPU if there is one), cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--workers", type=int, default=0, help="image-loading worker processes (default 0)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dataset-label", default=None, help="data set name written into the tables")
    parser.add_argument("--model-label", default=None, help="model name written into the tables")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU this job was given, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device", "device", "cpu or auto: this machine has no CUDA device")
    return torch.device(name)


def load_for_args(args: argparse.Namespace):
    """The model of the shared arguments (CLIPpy-style configs included), on the resolved device."""
    from clipxai.models import clippy

    if args.threads:
        torch.set_num_threads(args.threads)
    return clippy.load_any(args.model, args.pretrained, args.checkpoint, resolve_device(args.device),
                           weights_stamp=args.weights_stamp)
