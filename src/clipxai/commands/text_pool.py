"""Verb ``text-pool``: write a generated TextSpan text pool (one description per line).

The papers' pools are downloaded (``clipxai download textspan_image_descriptions_general ...``); the shapes world's
pool is generated here from its vocabulary (clipxai.protocols.textpool).
"""

from __future__ import annotations

import argparse
import logging

from clipxai.io import write_text
from clipxai.commands import _args

NAME = "text-pool"
HELP = "write a generated text pool (the shapes world's descriptions), one per line"
WORLDS = ("shapes",)

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", choices=WORLDS, default="shapes", help="whose vocabulary the pool describes")
    _args.add_output(parser, "--out", required=True, help="output text file")


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols.textpool import shapes_text_pool

    pool = shapes_text_pool()
    write_text(args.out, "\n".join(pool) + "\n")
    log.info("wrote %d descriptions to %s", len(pool), args.out)
    return 0
