"""``clipxai decompose``: split the image embeddings of some images into per-layer, per-head residual terms."""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from clipxai.errors import InputError
from clipxai.io import save_npz
from clipxai.commands._args import add_model_arguments
from clipxai.commands import _args
from clipxai.commands._args import parse_layers

NAME = "decompose"
HELP = "decompose the image embeddings of images into attention-head, MLP and per-patch terms (ViT CLIP)"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    _args.add_checked(parser, "--image", nargs="+", action="extend", required=True, metavar="FILE",
                      help="images to decompose", check=_args.image_file)
    _args.add_output(parser, "--out", required=True, help="output .npz: attn, mlp, spatial, spatial_layers, "
                        "embedding, image_paths")
    parser.add_argument("--spatial-layers", default="", help="comma-separated block indices (negative: from the "
                        "end) whose per-token terms to keep, e.g. 10,11")
    parser.add_argument("--spatial-per-head", action="store_true", help="keep per-token terms per head too "
                        "(spatial [B, layers, heads, tokens, D])")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")


def load_images(paths: list[str], preprocess) -> torch.Tensor:
    """Open and preprocess images with the model's own transform -> [B, 3, H, W]."""
    from clipxai.data.images import read_image

    return torch.stack([preprocess(read_image(path, "--image").convert("RGB")) for path in paths])


def run(args: argparse.Namespace) -> int:
    from clipxai.models.decompose import decompose
    from clipxai.models.registry import load_model

    layers = parse_layers(args.spatial_layers)
    if args.batch_size < 1:
        raise InputError("--batch-size", "value", "a positive integer")
    loaded = load_model(args.model, args.pretrained, args.checkpoint, args.device)
    parts = {"attn": [], "mlp": [], "spatial": [], "embedding": []}
    kept = ()
    for start in range(0, len(args.image), args.batch_size):
        images = load_images(args.image[start:start + args.batch_size], loaded.preprocess)
        result = decompose(loaded.model, images, layers, args.spatial_per_head)
        kept = result.spatial_layers
        for name in parts:
            value = getattr(result, name)
            if value is not None:
                parts[name].append(value.cpu().numpy().astype(np.float32))
    arrays = {name: np.concatenate(values) for name, values in parts.items() if values}
    save_npz(args.out, **arrays, spatial_layers=np.asarray(kept, dtype=np.int64),
             image_paths=np.asarray([str(p) for p in args.image], dtype=np.str_))
    log.info("decomposed %d images into %s (attn %s)", len(args.image), args.out, arrays["attn"].shape)
    return 0
