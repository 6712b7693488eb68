"""``clipxai fetch-weights --model NAME --pretrained TAG --stamp FILE``: fill the weights cache on a node with internet.

GPU jobs run on compute nodes without internet; they find the weights in the cache this verb fills (how each kind
of tag is fetched: :mod:`clipxai.models.weights`; CLIPpy's tokenizer: :func:`clipxai.models.clippy.fetch_text_tower`).
Then a small stamp (model, tag, where from, files with size and sha256) is written atomically: the workflow's
output for this step, and the record of exactly which bytes the results came from.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from clipxai.data import sources
from clipxai.errors import InputError
from clipxai.io import write_json
from clipxai.commands import _args
from clipxai.models import weights

NAME = "fetch-weights"
HELP = "download a model's pretrained weights into the open_clip / Hugging Face cache and write a stamp file"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="open_clip model name (e.g. ViT-B-16, ViT-B-32-quickgelu)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pretrained", help="open_clip pretrained tag (e.g. laion2b_s34b_b88k) or "
                        "a catalogued checkpoint (" + ", ".join(n for n, s in sources.SOURCES.items()
                                                              if s.kind == "weights") + ")")
    source.add_argument("--checkpoint", type=Path, help="a local state dict or open_clip model folder instead "
                        "(recorded with its size and sha256; config `checkpoint:`)")
    _args.add_output(parser, "--cache-dir", kind="dir", type=Path,
                     help="weights cache (default: open_clip's: the Hugging Face hub "
                     f"cache for hub-hosted tags, {weights.OPEN_CLIP_URL_CACHE} for URL-addressed ones)")
    _args.add_output(parser, "--stamp", required=True, type=Path, help="JSON record of the fetched files, written last")
    parser.add_argument("--url", help="take the checkpoint from this URL / local path instead (a mirror)")
    for prefix, what in (("", "the --url mirror's file"), ("tokenizer-", "the tokenizer mirror's file")):
        parser.add_argument(f"--{prefix}sha256", help=f"sha256 of {what} (a mirror serving other bytes)")
        parser.add_argument(f"--{prefix}md5", help=f"md5 of {what}")
        parser.add_argument(f"--{prefix}size", type=int, help=f"size in bytes of {what}")
        parser.add_argument(f"--{prefix}no-checksum", action="store_true",
                            help=f"download {what} unverified (config `checksum: none`)")
    parser.add_argument("--tokenizer-url", help="CLIPpy: take the Sentence-T5 tokenizer.json from this URL / path")
    parser.add_argument("--text-tower-dir", type=Path, help="CLIPpy: where the text tower's tokenizer and config go "
                        "(default: text-tower/ beside the stamp)")
    _args.add_output(parser, "--lock", type=Path,
                     help="checksum lock file for checkpoints without a published checksum")
    parser.add_argument("--check-load", action="store_true",
                        help="also build the open_clip model from the fetched file (strict state-dict load)")
    parser.add_argument("--retries", type=int, default=4, help="retries per failure (default 4)")
    parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds (default 60)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    mirror = weights.mirror_override(args.url, args.sha256, args.md5, args.size, args.no_checksum)
    if args.checkpoint is not None:
        if mirror is not None:
            raise InputError("fetch-weights", "--url", "no mirror beside --checkpoint (a local file)")
        record = weights.record_checkpoint(args.model, args.checkpoint)
    else:
        record = weights.fetch_weights(args.model, args.pretrained, cache_dir=args.cache_dir, lock=args.lock,
                                       check_load=args.check_load, retries=args.retries, timeout=args.timeout,
                                       progress=not args.no_progress, mirror=mirror)
    from clipxai.models import clippy  # torch and open_clip: only once the arguments are in

    if args.model == clippy.MODEL_NAME or clippy.is_clippy(args.model):
        # the text tower's tokenizer: compute nodes have no hub access, so it is fetched here with the weights
        tokenizer_mirror = weights.mirror_override(args.tokenizer_url, args.tokenizer_sha256, args.tokenizer_md5,
                                                   args.tokenizer_size, args.tokenizer_no_checksum)
        record["tokenizer"] = clippy.fetch_text_tower(args.text_tower_dir or args.stamp.parent / "text-tower",
                                                      tokenizer_mirror, lock=args.lock, retries=args.retries,
                                                      timeout=args.timeout, progress=not args.no_progress)
    write_json(args.stamp, record)
    log.info("weights of %s/%s: %s", args.model, args.pretrained, record["files"][0]["path"])
    return 0
