"""Verb ``table-imagenet-seg``: the ImageNet-segmentation table of the TextSpan paper (methods as rows; pixel
accuracy, mIoU, mAP, zero-shot top-1), faithful and corrected side by side, for every configured data set and
model, from ``score-segmentation`` CSVs.

Writes a CSV (one row per data set x model x method, each metric once per mode, ``differs`` naming the metrics the
two modes disagree on, ``note`` naming methods that are one method), a Markdown rendering (one block per data set
and model, in percent as the paper prints them) and the report's sidecar (clipxai.viz.provenance).
"""

from __future__ import annotations

import argparse
import json
import logging

import pandas as pd

from clipxai.errors import InputError
from clipxai.io import write_csv, write_text
from clipxai.commands import _args

NAME = "table-imagenet-seg"
HELP = "ImageNet-segmentation table (pixAcc, mIoU, mAP per method, faithful and corrected) from score-segmentation CSVs"
RULE = "table_imagenet_seg"
METRICS = ["pixel_accuracy", "miou", "map", "top1"]
TITLES = {"pixel_accuracy": "pixAcc", "miou": "mIoU", "map": "mAP", "top1": "top-1"}
MODES = ("faithful", "corrected")
COLUMNS = ["dataset", "model", "method", "n_images", *[f"{m}_{mode}" for m in METRICS for mode in MODES], "differs",
           "note"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scores", nargs="+", action="extend", required=True,
                        help="results/<dataset>/<model>/scores/imagenet_segmentation.csv files")
    _args.add_output(parser, "--out-csv", required=True)
    _args.add_output(parser, "--out-md", required=True)
    parser.add_argument("--rule", default=RULE)


def _last_block_gradients(registry_method: str, params: str) -> str | None:
    """Which of the two last-block-only gradient x attention methods a row runs ("gradcam", "chefer"), if any."""
    try:
        params = json.loads(params) if params else {}
    except json.JSONDecodeError:
        return None
    if registry_method == "gradcam-vit" and params.get("polarity", "positive") == "positive":
        return "gradcam"
    if registry_method == "chefer2021" and int(params.get("start_layer", -1)) == -1:
        return "chefer"
    return None


def identity_notes(block: pd.DataFrame) -> dict[str, str]:
    """label -> note for methods of one (data set, model) that are one method: seed 001's gradcam-vit is Chefer et
    al.'s relevance on the last block only (R = I + cam, CLS row = cam), its objective the cosine where Chefer's is
    logit_scale * cosine; the gradients, and so the maps, differ by that positive factor alone, which min-max
    normalisation removes."""
    kinds = {row.method: _last_block_gradients(row.registry_method, row.params) for row in block.itertuples()}
    notes = {}
    for kind, other in (("gradcam", "chefer"), ("chefer", "gradcam")):
        partners = [label for label, k in kinds.items() if k == other]
        for label in (label for label, k in kinds.items() if k == kind):
            if partners:
                notes[label] = (f"one method with {', '.join(partners)}: last-block gradient x attention, "
                                "maps equal up to the factor logit_scale")
    return notes


def side_by_side(scores: pd.DataFrame, dataset: str, model: str, path: str) -> list[dict]:
    """One row per method of one score CSV: each metric in both modes."""
    rows = []
    notes = identity_notes(scores.drop_duplicates("method"))
    for method, block in scores.groupby("method", sort=False):
        by_mode = block.set_index("mode")
        missing = [mode for mode in MODES if mode not in by_mode.index]
        if missing or len(by_mode) != len(MODES):
            raise InputError(path, "mode", f"one row per mode ({', '.join(MODES)}) for method {method!r}")
        row = {"dataset": dataset, "model": model, "method": method,
               "n_images": int(by_mode.loc["corrected", "n_images"])}
        for metric in METRICS:
            for mode in MODES:
                row[f"{metric}_{mode}"] = float(by_mode.loc[mode, metric])
        row["differs"] = " ".join(m for m in METRICS
                                  if not _same(row[f"{m}_faithful"], row[f"{m}_corrected"]))
        row["note"] = notes.get(method, "")
        rows.append(row)
    return rows


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)  # NaN == NaN here: top-1 of an unlabelled set


def run(args: argparse.Namespace) -> int:
    from clipxai.artifacts.tables import SEGMENTATION_SCORE_COLUMNS as SCORE_COLUMNS
    from clipxai.protocols.tables import keys_from_path, markdown, read_csv
    from clipxai.viz.provenance import write_sidecar

    rows = []
    for path in args.scores:
        dataset, model = keys_from_path(path, "scores")
        frame = read_csv(path, "score-segmentation")
        missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(path, missing[0], "a column of the score-segmentation CSV")
        frame["params"] = frame["params"].fillna("").astype(str)
        rows += side_by_side(frame, dataset, model, path)
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(args.out_csv, table)
    blocks = ["# ImageNet segmentation (TextSpan protocol)\n",
              "faithful = the original evaluation (image resized and centre-cropped, label the whole mask squashed "
              "to the square; a constant map scores AP on an all-zero score); corrected = image and label resized "
              "alike, a constant map is all background. `differs`: the metrics the two modes disagree on.\n"]
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=False):
        shown = block[["method", "n_images"]].copy()
        for metric in METRICS:
            for mode in MODES:
                shown[f"{TITLES[metric]} {mode} (%)"] = 100 * block[f"{metric}_{mode}"].astype(float)
        shown["differs"] = block["differs"]
        shown["note"] = block["note"]
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
