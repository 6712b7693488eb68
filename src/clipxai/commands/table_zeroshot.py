"""``clipxai table-zeroshot``: the zero-shot classification table (top-1 / top-5 per data set and model) from
``zeroshot`` outputs, with the published CLIPpy ImageNet top-1 beside the rows it is comparable to.

Writes a tidy CSV (accuracies in percent) and a Markdown rendering. Published numbers come from
``report/reported.yaml`` (section ``clippy``: ``imagenet_zeroshot_top1``).
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from clipxai.commands.table_segmentation import _markdown, _read
from clipxai.errors import InputError
from clipxai.io import write_csv, write_text

NAME = "table-zeroshot"
HELP = "zero-shot classification table (top-1/top-5 per data set and model) with the published CLIPpy number"

log = logging.getLogger(__name__)

COLUMNS = ["dataset", "model", "n_images", "n_classes", "n_templates", "templates", "top1", "top5", "chance_top1",
           "complete"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", nargs="+", required=True, help="zeroshot summary CSVs")
    parser.add_argument("--reported", default=None, help="report/reported.yaml (published numbers)")
    parser.add_argument("--published", action="append", default=[], metavar="DATASET:MODEL",
                        help="rows comparable with the published CLIPpy ImageNet top-1 (repeatable)")
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-md", required=True)


def published_top1(path: str | None) -> dict:
    """``{"top1", "source"}`` (percent) of the published CLIPpy ImageNet zero-shot top-1, or {} without a file."""
    if path is None:
        return {}
    import yaml

    try:
        with open(path) as fh:
            reported = yaml.safe_load(fh) or {}
        return {"top1": float(reported["clippy"]["values"]["imagenet_zeroshot_top1"]["value"]),
                "source": str(reported["clippy"].get("source", ""))}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, "(file)", f"a readable YAML file ({err})") from None
    except (KeyError, TypeError, ValueError):
        raise InputError(path, "clippy.values.imagenet_zeroshot_top1.value", "the published number") from None


def build_table(results: pd.DataFrame, published: dict, comparable: set[tuple[str, str]]) -> pd.DataFrame:
    table = results[COLUMNS].copy()
    for column in ("top1", "top5", "chance_top1"):
        table[f"{column}_pct"] = 100 * table.pop(column)
    is_published = [(d, m) in comparable for d, m in zip(table["dataset"], table["model"])]
    table["published_top1_pct"] = [published.get("top1") if p else float("nan") for p in is_published]
    table["published_source"] = [published.get("source", "") if p else "" for p in is_published]
    return table.sort_values(["dataset", "model"], kind="stable").reset_index(drop=True)


def run(args: argparse.Namespace) -> int:
    results = _read(args.results, COLUMNS)
    comparable = set()
    for pair in args.published:
        if ":" not in pair:
            raise InputError("--published", "value", f"DATASET:MODEL, got {pair!r}")
        comparable.add(tuple(pair.split(":", 1)))
    table = build_table(results, published_top1(args.reported), comparable)
    write_csv(args.out_csv, table)
    parts = ["# Zero-shot classification, accuracy %\n\n",
             "ImageNet: open_clip's 1,000 class names x OpenAI's 80 templates; shapes: \"a {class}\".\n\n",
             _markdown(table.drop(columns=["published_source"]))]
    write_text(args.out_md, "".join(parts))
    log.info("zero-shot table: %d rows", len(table))
    return 0
