"""Verb ``table-imagenet-seg``: the ImageNet-segmentation table of the TextSpan paper (methods as rows; pixel
accuracy, mIoU, mAP, zero-shot top-1), faithful and corrected side by side, for every configured data set and
model, from ``score-segmentation`` CSVs (clipxai.protocols.heads_imagenet_seg).

Writes a CSV, a Markdown rendering (in percent as the paper prints them) and the report's sidecar.
"""

from __future__ import annotations

import argparse
import logging

from clipxai.io import write_csv, write_text
from clipxai.commands import _args

NAME = "table-imagenet-seg"
HELP = "ImageNet-segmentation table (pixAcc, mIoU, mAP per method, faithful and corrected) from score-segmentation CSVs"
RULE = "table_imagenet_seg"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scores", nargs="+", action="extend", required=True,
                        help="results/<dataset>/<model>/scores/imagenet_segmentation.csv files")
    _args.add_output(parser, "--out-csv", required=True)
    _args.add_output(parser, "--out-md", required=True)
    parser.add_argument("--rule", default=RULE)


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols.heads_imagenet_seg import segmentation_markdown, segmentation_table
    from clipxai.viz.provenance import write_sidecar

    table = segmentation_table(args.scores)
    write_csv(args.out_csv, table)
    write_text(args.out_md, segmentation_markdown(table))
    methods = ", ".join(dict.fromkeys(table["method"]))
    write_sidecar(
        args.out_csv, title="ImageNet segmentation from the image tower: decomposition vs attribution methods",
        caption=("Binary segmentation of the object in each image (TextSpan paper, after Chefer et al.): a map per "
                 "image, upsampled to the model's input size, clamped at 0, min-max normalised and thresholded at its "
                 "mean; pixel accuracy and two-class mIoU accumulated over the set, mAP averaged over images. "
                 "'decomposition' is the TextSpan map (per-patch residual terms of all layers and heads through the "
                 "zero-shot classifier, predicted class minus the class mean); attribution methods explain the "
                 f"predicted class's prompt. Methods: {methods}. top1: zero-shot accuracy where the set has labels. "
                 "Each metric twice: faithful (the original's input geometry, image centre-cropped while the label "
                 "is the whole mask squashed to the square, and its AP of 0.5 for a constant map) and corrected "
                 "(image and mask resized alike; a constant map is all background); 'differs' names the metrics "
                 "where the two disagree. gradcam-vit (seed 001) and chefer2021 on the last block are one method: "
                 "their maps differ by the positive factor logit_scale only, so their rows agree up to rounding "
                 "('note')."),
        rule=args.rule, command="clipxai table-imagenet-seg", inputs=args.scores, section="inside the image tower")
    log.info("wrote %s (%d rows)", args.out_csv, len(table))
    return 0
