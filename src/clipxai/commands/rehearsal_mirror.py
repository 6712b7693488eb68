"""Verb ``rehearsal-mirror``: write miniature copies of the catalogue's downloads, the licence-bound local data and
random weights of the model files (clipxai.data.rehearsal; its docstring has the full OUT layout)."""

from __future__ import annotations

import argparse
import logging

from clipxai.commands import _args
from clipxai.data.rehearsal import WEIGHT_ARCHS

NAME = "rehearsal-mirror"
HELP = ("write a miniature copy of every real download of the catalogue in its real archive layout and file names, "
        "with manifest.json (size, sha256, md5). Served (top-level files of OUT): COCO val2017.zip, the panoptic "
        "zip, png_coco_val2017.json, gtsegs_ijcv.mat, the Waterbirds tar.gz, the VOC tar, the two ImageNet tars, "
        "the text pools, CLIPpy's clippy_5k.pt (random weights) and its tokenizer.json. Local paths: "
        "OUT/imagenet/val -> datasets.imagenet.path; OUT/artemis/artemis_dataset_release_v0.csv and OUT/wikiart "
        "-> similarity.studies.artemis.csv/images; OUT/affectnet/val_set -> similarity.studies.affectnet.path; "
        "OUT/weights/<ARCH>.safetensors (--weights) -> models.<m>.checkpoint. Not mirrored: open_clip pretrained "
        "tags (the --weights files stand in for them)")

log = logging.getLogger(__name__)


def _check_base_url(value: str, option: str) -> None:
    from clipxai.data.rehearsal import check_base_url

    check_base_url(value, option)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _args.add_output(parser, "out", kind="dir", metavar="OUT",
                     help="folder to write (new, empty, or an earlier mirror, which is replaced)")
    parser.add_argument("--weights", action="extend", nargs="+", default=[], choices=(*WEIGHT_ARCHS, "all"),
                        metavar="ARCH", help="also write OUT/weights/<ARCH>.safetensors, random weights "
                        f"(torch.manual_seed(0)) of open_clip architecture ARCH ({', '.join(WEIGHT_ARCHS)}, or all; "
                        "repeatable; all three are about 3 GB) for config `checkpoint:` entries")
    _args.add_checked(parser, "--base-url", check=_check_base_url, metavar="URL",
                      help="also write OUT/sources.yaml, a config overlay holding only `sources:` that points "
                      "every served file at URL/<file> with the mirror's sha256/md5/size (URL: where OUT is served, "
                      "e.g. http://127.0.0.1:8000)")


def run(args: argparse.Namespace) -> int:
    from clipxai.data import rehearsal

    manifest = rehearsal.write_mirror(args.out, weights=args.weights, base_url=args.base_url)
    log.info("wrote %d mirror files to %s (not mirrored: %s)", len(manifest["files"]), args.out,
             ", ".join(manifest["not_mirrored"]))
    return 0
