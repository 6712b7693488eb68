"""``clipxai table-segmentation``: the dense-segmentation (VOC mIoU) table from ``segment-voc`` outputs.

Writes a tidy summary CSV (one row per data set x model x split x alignment x absent mode, mIoU in percent, with
the published CLIPpy numbers beside the rows they are comparable to), a tidy per-class CSV, and a Markdown rendering
(per data set: the summary, then per-class IoU for the faithful and the corrected protocol).

Published numbers come from ``report/reported.yaml`` (section ``clippy``). The Jaccard index (JI) is shown as
published only: the replication reports it but its code does not compute it, so its protocol cannot be stated
exactly (``protocol_known: false`` there) and nothing here is compared with it.
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from clipxai.errors import InputError
from clipxai.io import write_csv, write_text

NAME = "table-segmentation"
HELP = "VOC dense-segmentation table (mIoU per model, per-class IoU) with the published CLIPpy numbers"

log = logging.getLogger(__name__)

KEYS = ["dataset", "model", "split", "alignment", "absent"]
JI_NOTE = ("published only: the replication's code does not compute JI, so its protocol cannot be stated exactly; "
           "not reproduced")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summaries", nargs="+", required=True, help="segment-voc summary CSVs")
    parser.add_argument("--per-class", nargs="+", required=True, help="segment-voc per-class CSVs")
    parser.add_argument("--reported", default=None, help="report/reported.yaml (published numbers)")
    parser.add_argument("--published", action="append", default=[], metavar="DATASET:MODEL",
                        help="rows comparable with the published CLIPpy VOC numbers (repeatable)")
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-per-class", required=True)
    parser.add_argument("--out-md", required=True)


def _read(paths: list[str], required: list[str]) -> pd.DataFrame:
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise InputError(path, "(file)", f"a readable CSV ({err})") from None
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise InputError(path, missing[0], "a column written by segment-voc")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def published_values(path: str | None) -> dict:
    """``{"miou", "ji", "source"}`` of the published CLIPpy VOC numbers (percent), or {} without a file."""
    if path is None:
        return {}
    import yaml

    try:
        with open(path) as fh:
            reported = yaml.safe_load(fh) or {}
        values = reported["clippy"]["values"]
        return {"miou": float(values["voc_miou"]["value"]), "ji": float(values["voc_ji"]["value"]),
                "source": str(reported["clippy"].get("source", ""))}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, "(file)", f"a readable YAML file ({err})") from None
    except (KeyError, TypeError, ValueError):
        raise InputError(path, "clippy.values.voc_miou/voc_ji.value", "the published CLIPpy VOC numbers") from None


def _markdown(frame: pd.DataFrame, float_digits: int = 1) -> str:
    """A GitHub-style Markdown table (no extra dependency); NaN shown as an empty cell."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = []
    for values in frame.itertuples(index=False):
        cells = []
        for value in values:
            if isinstance(value, float):
                cells.append("" if pd.isna(value) else f"{value:.{float_digits}f}")
            else:
                cells.append(str(value))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *rows]) + "\n"


def build_tables(summary: pd.DataFrame, per_class: pd.DataFrame, published: dict,
                 comparable: set[tuple[str, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary table, per-class table), both tidy, IoU in percent, sorted by their keys."""
    table = summary[KEYS + ["n_images", "n_classes_present", "miou"]].copy()
    table["miou_pct"] = 100 * table.pop("miou")
    is_published = [(d, m) in comparable for d, m in zip(table["dataset"], table["model"])]
    table["published_miou_pct"] = [published.get("miou") if p else float("nan") for p in is_published]
    table["published_ji_pct"] = [published.get("ji") if p else float("nan") for p in is_published]
    table["published_note"] = [f"{published.get('source', '')}; JI {JI_NOTE}" if p and published else ""
                               for p in is_published]
    classes = per_class[KEYS + ["class_index", "class_name", "iou", "present"]].copy()
    classes["iou_pct"] = 100 * classes.pop("iou")
    return (table.sort_values(KEYS, kind="stable").reset_index(drop=True),
            classes.sort_values(KEYS + ["class_index"], kind="stable").reset_index(drop=True))


def markdown(table: pd.DataFrame, classes: pd.DataFrame) -> str:
    parts = ["# Dense patch-text segmentation (CLIPpy protocol), mIoU %\n",
             "alignment: faithful = label squashed to the crop (as the replication), corrected = label through the "
             "image's own resize + centre crop. absent: zero = a class absent from prediction and label counts as "
             f"IoU 0 (as the replication), exclude = left out. JI: {JI_NOTE}.\n"]
    for dataset, rows in table.groupby("dataset", sort=True):
        parts.append(f"\n## {dataset}\n\n")
        parts.append(_markdown(rows.drop(columns=["dataset", "published_note"])))
        for alignment, absent in (("faithful", "zero"), ("corrected", "exclude")):
            subset = classes[(classes["dataset"] == dataset) & (classes["alignment"] == alignment)
                             & (classes["absent"] == absent)]
            if subset.empty:
                continue
            wide = subset.pivot_table(index=["model", "split"], columns="class_index", values="iou_pct",
                                      dropna=False, sort=True)
            names = subset.drop_duplicates("class_index").set_index("class_index")["class_name"]
            wide.columns = [names[c] for c in wide.columns]
            parts.append(f"\nPer-class IoU %, {alignment} alignment, absent={absent}:\n\n")
            parts.append(_markdown(wide.reset_index()))
    return "".join(parts)


def run(args: argparse.Namespace) -> int:
    summary = _read(args.summaries, KEYS + ["n_images", "n_classes_present", "miou"])
    per_class = _read(args.per_class, KEYS + ["class_index", "class_name", "iou", "present"])
    comparable = set()
    for pair in args.published:
        if ":" not in pair:
            raise InputError("--published", "value", f"DATASET:MODEL, got {pair!r}")
        comparable.add(tuple(pair.split(":", 1)))
    table, classes = build_tables(summary, per_class, published_values(args.reported), comparable)
    write_csv(args.out_csv, table)
    write_csv(args.out_per_class, classes)
    write_text(args.out_md, markdown(table, classes))
    log.info("segmentation table: %d rows, %d per-class rows", len(table), len(classes))
    return 0
