"""``clipxai table-zeroshot``: the zero-shot classification table from ``zeroshot`` outputs.

One row per data set x model x metric (top-1, top-5): ``value`` (fraction) with its bootstrap 95% interval
(``lo``, ``hi``), the number of images, classes and templates. A top-1 row of a run named by ``--published``
carries the id of the published number in column ``reported`` (report/reported.yaml ``published``: CLIPpy's 45.3,
open_clip's benchmark results for the papers' models), so the report shows the published value beside it. Also
writes the JSON sidecar and a Markdown rendering (percent).
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from clipxai.artifacts.tables import markdown_table, parse_ids, read_csvs
from clipxai.io import write_csv, write_text
from clipxai.commands import _args

NAME = "table-zeroshot"
HELP = "zero-shot classification table (top-1/top-5 with 95% CI per data set and model), tied to published numbers"

log = logging.getLogger(__name__)

COLUMNS = ["dataset", "model", "n_images", "n_split_images", "n_classes", "n_templates", "templates", "top1",
           "top1_lo", "top1_hi", "top5", "top5_lo", "top5_hi", "chance_top1", "complete"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", nargs="+", action="extend", required=True, help="zeroshot summary CSVs")
    _args.add_reported_argument(parser, "report/reported.yaml: the ids given must exist in it")
    parser.add_argument("--published", action="append", default=[], metavar="DATASET:MODEL=ID",
                        help="a run whose top-1 reproduces a published number, and that number's id (repeatable)")
    _args.add_output(parser, "--out-csv", required=True)
    _args.add_output(parser, "--out-md", required=True)
    parser.add_argument("--rule", default="table_zeroshot", help="rule named in the sidecar")


def build_table(results: pd.DataFrame, ids: dict) -> pd.DataFrame:
    rows = []
    for record in results.sort_values(["dataset", "model"], kind="stable").to_dict("records"):
        for metric in ("top1", "top5"):
            rows.append({"dataset": record["dataset"], "model": record["model"], "metric": metric,
                         "value": record[metric], "lo": record[f"{metric}_lo"], "hi": record[f"{metric}_hi"],
                         "chance": record["chance_top1"] if metric == "top1" else min(1.0, 5 * record["chance_top1"]),
                         "n_images": record["n_images"], "n_split_images": record["n_split_images"],
                         "n_classes": record["n_classes"],
                         "n_templates": record["n_templates"], "templates": record["templates"],
                         "complete": bool(record["complete"]),
                         "reported": ids.get((record["dataset"], record["model"]), "") if metric == "top1" else ""})
    return pd.DataFrame(rows)


def run(args: argparse.Namespace) -> int:
    from clipxai.viz.provenance import write_sidecar

    results = read_csvs(args.results, COLUMNS, "zeroshot")
    table = build_table(results, parse_ids(args.published, "--published", _args.reported_file(args.reported)))
    write_csv(args.out_csv, table)
    write_sidecar(args.out_csv, title="Zero-shot classification accuracy",
                  caption=("Top-1 and top-5 accuracy (fraction) with a bootstrap 95% interval over images. ImageNet:"
                           " open_clip's 1,000 class names, the mean of OpenAI's 80 templates per class (as CLIPpy's"
                           " evaluation); shapes: the class name in \"a {}\". complete = every image of the split was"
                           " scored (n_images of n_split_images) with every template; a partial row gets no"
                           " difference from the published number."),
                  rule=args.rule, command="clipxai table-zeroshot", inputs=list(args.results), section="zero-shot")
    shown = table.assign(value=100 * table["value"], lo=100 * table["lo"], hi=100 * table["hi"],
                         chance=100 * table["chance"])
    write_text(args.out_md, "# Zero-shot classification, accuracy %\n\n" + markdown_table(shown))
    log.info("zero-shot table: %d rows", len(table))
    return 0
