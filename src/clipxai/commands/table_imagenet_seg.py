"""Verb ``table-imagenet-seg``: the ImageNet-segmentation table of the TextSpan paper (methods as rows; pixel
accuracy, mIoU, mAP) for every configured data set and model, from ``score-segmentation`` CSVs.

Writes a tidy CSV (one row per data set x model x method), a Markdown rendering (one block per data set and
model, in percent as the paper prints them) and the report's sidecar (clipxai.viz.provenance).
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from clipxai.errors import InputError
from clipxai.io import write_csv, write_text
from clipxai.commands import _args

NAME = "table-imagenet-seg"
HELP = "ImageNet-segmentation table (pixAcc, mIoU, mAP per method) from score-segmentation CSVs"
RULE = "table_imagenet_seg"
METRICS = ["pixel_accuracy", "miou", "map"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scores", nargs="+", action="extend", required=True,
                        help="results/<dataset>/<model>/scores/imagenet_segmentation.csv files")
    _args.add_output(parser, "--out-csv", required=True)
    _args.add_output(parser, "--out-md", required=True)
    parser.add_argument("--rule", default=RULE)


def run(args: argparse.Namespace) -> int:
    from clipxai.commands.score_segmentation import COLUMNS
    from clipxai.protocols.tables import keys_from_path, markdown, read_csv
    from clipxai.viz.provenance import write_sidecar

    frames = []
    for path in args.scores:
        dataset, model = keys_from_path(path, "scores")
        frame = read_csv(path, "score-segmentation")
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(path, missing[0], "a column of the score-segmentation CSV")
        frames.append(frame[COLUMNS].assign(dataset=dataset, model=model))
    table = pd.concat(frames, ignore_index=True)[["dataset", "model", *COLUMNS]]
    write_csv(args.out_csv, table)
    blocks = ["# ImageNet segmentation (TextSpan protocol)\n"]
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=False):
        shown = block[["method", "n_images"]].copy()
        for metric, title in zip(METRICS, ["pixAcc (%)", "mIoU (%)", "mAP (%)"]):
            shown[title] = 100 * block[metric].astype(float)
        shown["zero-shot top-1 (%)"] = 100 * block["top1"].astype(float)
        blocks.append(f"## {dataset} / {model}\n\n{markdown(shown, digits=2)}")
    write_text(args.out_md, "\n".join(blocks))
    methods = ", ".join(dict.fromkeys(table["method"]))
    write_sidecar(
        args.out_csv, title="ImageNet segmentation from the image tower: decomposition vs attribution methods",
        caption=("Binary segmentation of the object in each image (TextSpan paper, after Chefer et al.): a map per "
                 "image, upsampled to the model's input size, clamped at 0, min-max normalised and thresholded at its "
                 "mean; pixel accuracy and two-class mIoU accumulated over the set, mAP averaged over images. "
                 "'decomposition' is the TextSpan map (per-patch residual terms of all layers and heads through the "
                 "zero-shot classifier, predicted class minus the class mean); attribution methods explain the "
                 f"predicted class's prompt. Methods: {methods}. top1: zero-shot accuracy where the set has labels."),
        rule=args.rule, command="clipxai table-imagenet-seg", inputs=args.scores, section="inside the image tower")
    log.info("wrote %s (%d rows)", args.out_csv, len(table))
    return 0
