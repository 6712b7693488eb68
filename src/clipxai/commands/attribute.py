"""``clipxai attribute``: explain how a CLIP matches every given image with every given text.

Every image is paired with every text, image-major (pair p = image p // T, text p % T). The maps file holds:

- ``image_relevance`` float32 [P, H, W]: the map at input resolution (bilinear), min-max normalised per map;
- ``image_relevance_grid`` float32 [P, gh, gw]: the method's map at the model's patch grid, unnormalised;
- ``text_relevance`` float32 [P, context_length - 2]: relevance of caption token j (token position j + 1,
  between the start and end token), summing to 1 per pair, NaN after the caption (all NaN for image-only methods);
- ``tokens`` int64 [P, context_length]; ``pairs`` str [P, 2] (image path, text); ``method`` str; ``params`` str
  (the method's parameters as JSON); ``model`` str.
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import torch
from tqdm import tqdm

from clipxai.artifacts.maps import caption_columns
from clipxai.errors import InputError
from clipxai.io import save_npz
from clipxai.commands._args import add_model_arguments
from clipxai.commands import _args

NAME = "attribute"
HELP = "explain image-text matches of a CLIP with an attribution method (every image x every text)"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--method", required=True, help="attribution method (see clipxai.attribution.available())")
    _args.add_checked(parser, "--image", nargs="+", action="extend", required=True, metavar="FILE", help="images",
                      check=_args.image_file)
    _args.add_checked(parser, "--text", nargs="+", action="extend", required=True, metavar="TEXT",
                      help="texts (quote each)", check=_args.nonempty_text)
    _args.add_output(parser, "--out", required=True, help="output maps .npz (layout in this module's docstring)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="params",
                        help="a method parameter, e.g. start_layer=0 (repeatable)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per forward/backward")
    parser.add_argument("--device", default="cpu")


def parse_params(items: list[str]) -> dict:
    """``["start_layer=0", "word=red"]`` -> {"start_layer": 0, "word": "red"} (JSON values, else strings)."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError("--set", item, "KEY=VALUE")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def tokenize(loaded, texts: list[str]) -> torch.Tensor:
    """Tokenise with the model's tokenizer; warn for every caption cut to the context window."""
    tokens = loaded.tokenizer(texts)
    encode = getattr(loaded.tokenizer, "encode", None)
    for text in texts:
        n_tokens = len(encode(text)) if encode is not None else 0
        if n_tokens > loaded.context_length - 2:
            words = text.split()
            start = " ".join(words[:8]) + (" ..." if len(words) > 8 else "")  # a 500-word caption is no log line
            log.warning("text of %d tokens truncated to the %d-token context window of %s: %r", n_tokens,
                        loaded.context_length, loaded.name, start)
    return tokens


def run(args: argparse.Namespace) -> int:
    import clipxai.attribution as attribution
    from clipxai.attribution.base import upsample
    from clipxai.data.images import read_image
    from clipxai.models.registry import load_model

    if args.batch_size < 1:
        raise InputError("--batch-size", "value", "a positive integer")
    method = attribution.get(args.method, **parse_params(args.params))
    pictures = [read_image(path, "--image").convert("RGB") for path in args.image]  # bad files fail before loading
    loaded = load_model(args.model, args.pretrained, args.checkpoint, args.device)
    images = torch.stack([loaded.preprocess(picture) for picture in pictures])
    text_tokens = tokenize(loaded, args.text)
    pairs = [(i, t) for i in range(len(args.image)) for t in range(len(args.text))]

    grids, texts = [], []
    for start in tqdm(range(0, len(pairs), args.batch_size), desc=f"attribute {args.method}", unit="batch"):
        batch = pairs[start:start + args.batch_size]
        result = method.attribute(loaded, images[[i for i, _ in batch]], text_tokens[[t for _, t in batch]])
        grids.append(result.image)
        texts.append(result.text)
    grid = torch.cat(grids)
    tokens = text_tokens[[t for _, t in pairs]]
    text = None if any(t is None for t in texts) else torch.cat(texts)
    save_npz(args.out,
             image_relevance=upsample(grid, loaded.image_size).numpy().astype(np.float32),
             image_relevance_grid=grid.numpy().astype(np.float32),
             text_relevance=caption_columns(text, tokens),
             tokens=tokens.numpy().astype(np.int64),
             pairs=np.asarray([(str(args.image[i]), args.text[t]) for i, t in pairs], dtype=np.str_).reshape(-1, 2),
             method=np.asarray(args.method),
             params=np.asarray(json.dumps(method.params, sort_keys=True)),
             model=np.asarray(loaded.name))
    log.info("%s: %d pairs (%d images x %d texts) -> %s", args.method, len(pairs), len(args.image),
             len(args.text), args.out)
    return 0
