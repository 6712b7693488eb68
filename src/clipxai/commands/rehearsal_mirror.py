"""Verb ``rehearsal-mirror``: write miniature copies of the catalogue's downloads (clipxai.data.rehearsal)."""

from __future__ import annotations

import argparse
import logging

from clipxai.commands import _args

NAME = "rehearsal-mirror"
HELP = ("write a miniature copy of every real download of the catalogue (COCO, panoptic, PNG, ImageNet-seg, "
        "Waterbirds, VOC, ImageNet, text pools) in its real archive layout and file names, with manifest.json "
        "(size, sha256, md5); model weights and CLIPpy's tokenizer are not mirrored")

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _args.add_output(parser, "out", kind="dir", metavar="OUT",
                     help="folder to write (new, empty, or an earlier mirror, which is replaced)")


def run(args: argparse.Namespace) -> int:
    from clipxai.data import rehearsal

    manifest = rehearsal.write_mirror(args.out)
    log.info("wrote %d mirror files to %s (not mirrored: %s)", len(manifest["files"]), args.out,
             ", ".join(manifest["not_mirrored"]))
    return 0
