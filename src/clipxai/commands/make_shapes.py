"""``clipxai make-shapes``: write the synthetic shapes world in one of the real data sets' formats."""

from __future__ import annotations

import argparse
import json
import logging

from clipxai.data import shapes
from clipxai.data.kinds import FORMATS as FORMAT_TABLE, resolve
from clipxai.errors import InputError
from clipxai.commands import _args

NAME = "make-shapes"
HELP = "generate the synthetic shapes world (seeded) in a real data set's on-disk format"

FORMATS = tuple(FORMAT_TABLE)  # each with its writer: a new format is a row of clipxai.data.kinds.FORMATS

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _args.add_output(parser, "--out", kind="dir", required=True, help="output folder (the data set root)")
    parser.add_argument("--format", default="coco-png", choices=FORMATS,
                        help="; ".join(f"{f.name}: {f.description}" + (" (default)" if f.name == "coco-png" else "")
                                       for f in FORMAT_TABLE.values()))
    parser.add_argument("--seed", type=int, default=0, help="root seed of every random draw (default 0)")
    parser.add_argument("--n-train", type=int, default=8000, help="training images (default 8000)")
    parser.add_argument("--n-val", type=int, default=400, help="evaluation images (default 400)")
    parser.add_argument("--n-test", type=int, default=None,
                        help="waterbirds only: test images, split 2 (default: --n-val)")
    parser.add_argument("--image-size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--held-out", default=",".join(shapes.DEFAULT_HELD_OUT),
                        help='colour-shape combinations never in training, comma-separated (default "%(default)s"; '
                             '"" for none)')
    parser.add_argument("--eval-split", default="val", help="name of the evaluation split (coco-png; default val)")
    parser.add_argument("--background-segment", action=argparse.BooleanOptionalAction, default=True,
                        help="coco-png: annotate the background as a stuff segment, never in captions (default; "
                             "panoptic tools such as pq_compute need a stuff category)")


def _config(args: argparse.Namespace) -> shapes.ShapesConfig:
    try:
        held_out = shapes.parse_held_out(args.held_out)
    except ValueError as err:
        raise InputError("command line", "--held-out", f"valid combinations: {err}") from None
    for flag, value in (("--n-train", args.n_train), ("--n-val", args.n_val)):
        if value < 0:
            raise InputError("command line", flag, f"a non-negative number of images, got {value}")
    try:
        return shapes.ShapesConfig(seed=args.seed, image_size=args.image_size, held_out=held_out,
                                   background_segment=args.background_segment)
    except ValueError as err:
        field = "--image-size" if "image_size" in str(err) else "--held-out"
        raise InputError("command line", field, f"valid settings: {err}") from None


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    sizes = shapes.ShapesSizes(n_train=args.n_train, n_val=args.n_val,
                               n_test=args.n_val if args.n_test is None else args.n_test, eval_split=args.eval_split)
    summary = resolve(FORMAT_TABLE[args.format].shapes_writer)(args.out, config, sizes)
    log.info("wrote the shapes world (%s) to %s", args.format, args.out)
    print(json.dumps(summary, sort_keys=True))
    return 0
