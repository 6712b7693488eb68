"""Verb ``ground``: run one attribution method over one shard of a grounding data set, in both directions.

Text->image (docs/protocols.md C): the image padded to a square, the phrase's utterance alone as text; the image map is
kept. Image->text: the image with everything outside the phrase's mask blacked out, all utterances of the narrative
joined by spaces as text (what the original fed CLIP, see :func:`i2t_text`); the token relevance is kept. Maps are stored at patch-grid resolution; scoring upsamples them.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from clipxai.errors import InputError
from clipxai.io import save_npz
from clipxai.commands._args import add_model_arguments
from clipxai.commands import _args

NAME = "ground"
HELP = "attribution maps for one shard of a grounding data set (text->image and image->text)"
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="data set root (COCO panoptic + PNG layout)")
    parser.add_argument("--split", default="val")
    add_model_arguments(parser)
    parser.add_argument("--method", required=True,
                        help='JSON {"method": registry name, "params": {...}} or a bare registry name')
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--max-entries", type=int, default=0, help="only the first N entries (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    _args.add_output(parser, "--out", required=True, help="output .npz")


def parse_method(text: str) -> tuple[str, dict]:
    text = text.strip()
    if not text.startswith("{"):
        return text, {}
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError("--method", "(JSON)", f'{{"method": ..., "params": {{...}}}} ({err})') from None
    if "method" not in spec:
        raise InputError("--method", "method", "a registry name")
    return spec["method"], dict(spec.get("params", {}))


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU this job was given (SLURM/CUDA set CUDA_VISIBLE_DEVICES), else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device", "device", "cpu or auto: this machine has no CUDA device")
    return torch.device(name)


def shard_entries(entries: list, shard: int, shards: int, max_entries: int) -> list:
    """Entry i belongs to shard i mod shards: every shard sees the whole data set's variety, sizes differ by <= 1."""
    if not 0 <= shard < shards:
        raise InputError("--shard", "shard", f"0 <= shard < {shards}, got {shard}")
    if max_entries:
        entries = entries[:max_entries]
    return entries[shard::shards]


def i2t_text(entry) -> str:
    """The image->text caption: every utterance of the narrative joined by single spaces, as the original did."""
    return " ".join(entry.utterances)


def _black_outside(image: Image.Image, mask: np.ndarray) -> Image.Image:
    pixels = np.asarray(image, dtype=np.uint8) * mask[..., None].astype(np.uint8)
    return Image.fromarray(pixels)


def run(args) -> int:
    from clipxai import attribution
    from clipxai.data import png
    from clipxai.data.transforms import pad_to_square
    from clipxai.models.registry import load_model
    from clipxai.seeding import derive_seed

    if args.threads:
        torch.set_num_threads(args.threads)
    method_name, params = parse_method(args.method)
    if method_name == "random" and "seed" not in params:
        # keyed by shard, so shards draw different maps and a rerun of one shard draws the same ones
        params["seed"] = derive_seed(args.seed, "random", args.data, args.split, args.shard)
    method = attribution.get(method_name, **params)
    lm = load_model(args.model, args.pretrained, args.checkpoint, resolve_device(args.device))
    dataset = png.load(args.data, args.split)
    entries = shard_entries(dataset.entries, args.shard, args.shards, args.max_entries)
    log.info("shard %d/%d: %d entries, method %s %s", args.shard, args.shards, len(entries), method_name, params)

    rows_id, rows_dir, grids, texts, tokens = [], [], [], [], []
    for direction in ("t2i", "i2t"):
        for start in tqdm(range(0, len(entries), args.batch_size), desc=f"{method_name} {direction}",
                          mininterval=10):
            batch = entries[start:start + args.batch_size]
            images, captions = [], []
            for entry in batch:
                image = dataset.image(entry)
                if direction == "i2t":
                    image = _black_outside(image, dataset.mask(entry))
                images.append(lm.preprocess(pad_to_square(image)))
                captions.append(entry.utterance if direction == "t2i" else i2t_text(entry))
            token_batch = lm.tokenizer(captions)
            result = method.attribute(lm, torch.stack(images).to(lm.device), token_batch.to(lm.device))
            gh, gw = lm.grid
            grid = (result.image.detach().float().cpu().numpy() if result.image is not None
                    else np.full((len(batch), gh, gw), np.nan, np.float32))
            text = (result.text.detach().float().cpu().numpy() if result.text is not None
                    else np.full(token_batch.shape, np.nan, np.float32))
            rows_id += [e.entry_id for e in batch]
            rows_dir += [direction] * len(batch)
            grids.append(grid.astype(np.float32))
            texts.append(text.astype(np.float32))
            tokens.append(token_batch.cpu().numpy().astype(np.int64))
    gh, gw = lm.grid
    save_npz(args.out,
             entry_id=np.array(rows_id, dtype=str), direction=np.array(rows_dir, dtype=str),
             image_grid=np.concatenate(grids) if grids else np.zeros((0, gh, gw), np.float32),
             text=np.concatenate(texts) if texts else np.zeros((0, lm.context_length), np.float32),
             tokens=np.concatenate(tokens) if tokens else np.zeros((0, lm.context_length), np.int64),
             image_size=np.int64(lm.image_size), method=np.array(method_name),
             params=np.array(json.dumps(params, sort_keys=True)))
    log.info("wrote %s (%d rows)", args.out, len(rows_id))
    if lm.device.type == "cuda":
        log.info("peak GPU memory: %.1f MiB", torch.cuda.max_memory_allocated(lm.device) / 2**20)
    return 0
