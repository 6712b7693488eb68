"""The ImageNet-segmentation table of the TextSpan paper (``clipxai table-imagenet-seg``): methods as rows; pixel
accuracy, mIoU, mAP, zero-shot top-1, faithful and corrected side by side, for every configured data set and
model, from ``score-segmentation`` CSVs.

A row per data set x model x method, each metric once per mode, ``differs`` naming the metrics the two modes
disagree on, ``note`` naming methods that are one method; the Markdown has one block per data set and model, in
percent as the paper prints them.
"""

from __future__ import annotations

import json
from typing import Sequence

import pandas as pd

from clipxai.artifacts.tables import SEGMENTATION_SCORE_COLUMNS, markdown_table
from clipxai.errors import InputError
from clipxai.protocols.tables import keys_from_path, read_csv

METRICS = ["pixel_accuracy", "miou", "map", "top1"]
TITLES = {"pixel_accuracy": "pixAcc", "miou": "mIoU", "map": "mAP", "top1": "top-1"}
MODES = ("faithful", "corrected")
COLUMNS = ["dataset", "model", "method", "n_images", *[f"{m}_{mode}" for m in METRICS for mode in MODES], "differs",
           "note"]


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


def segmentation_table(paths: Sequence[str]) -> pd.DataFrame:
    """The table of the score-segmentation CSVs at ``paths`` (results/<dataset>/<model>/scores/...)."""
    rows = []
    for path in paths:
        dataset, model = keys_from_path(path, "scores")
        frame = read_csv(path, "score-segmentation")
        missing = [c for c in SEGMENTATION_SCORE_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(path, missing[0], "a column of the score-segmentation CSV")
        frame["params"] = frame["params"].fillna("").astype(str)
        rows += side_by_side(frame, dataset, model, path)
    return pd.DataFrame(rows, columns=COLUMNS)


def segmentation_markdown(table: pd.DataFrame) -> str:
    """The table in Markdown: one block per data set and model, metrics in percent."""
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
        blocks.append(f"## {dataset} / {model}\n\n{markdown_table(shown, 2, escape_pipes=True)}")
    return "\n".join(blocks)
