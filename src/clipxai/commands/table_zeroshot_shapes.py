"""Verb ``table-zeroshot-shapes``: zero-shot accuracy on the shapes world, every (data set, model) in one table.

Collects ``results/<dataset>/<model>/zeroshot.csv`` (written by ``clipxai zeroshot-shapes``) into one tidy CSV with
the data set and model as columns, and writes its sidecar for the report. The shapes world has no published
counterpart: the table shows what the embedded default's models learned (colour vs shape, seen vs held-out
combinations) against chance.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clipxai.artifacts.tables import read_result_csv
from clipxai.errors import InputError
from clipxai.viz.provenance import publish_table
from clipxai.commands import _args

NAME = "table-zeroshot-shapes"
HELP = "zero-shot accuracy on the shapes world, every data set and model in one table"
RULE = "table_zeroshot_shapes"
NEEDED = ["subset", "n_images", "top1", "chance_top1"]


def add_arguments(parser) -> None:
    parser.add_argument("--results", nargs="+", action="extend", required=True,
                        help="results/<dataset>/<model>/zeroshot.csv files")
    _args.add_output(parser, "--out", required=True, help="results/tables/<name>.csv (a .json sidecar goes beside it)")
    parser.add_argument("--rule", default=RULE)


def read_result(path: Path) -> pd.DataFrame:
    """One zero-shot CSV with its data set and model (from the path results/<dataset>/<model>/zeroshot.csv)."""
    if len(path.parts) < 3:
        raise InputError(path, "(path)", "results/<dataset>/<model>/zeroshot.csv")
    frame = read_result_csv(path, NEEDED, "a zero-shot CSV written by clipxai zeroshot-shapes",
                            "a column of the zero-shot CSV (clipxai zeroshot-shapes)")
    frame.insert(0, "model", path.parts[-2])
    frame.insert(0, "dataset", path.parts[-3])
    return frame


def run(args) -> int:
    paths = [Path(p) for p in args.results]
    table = pd.concat([read_result(p) for p in paths], ignore_index=True)
    publish_table(
        table, args.out, title="Zero-shot classification on the shapes world",
        caption=("Accuracy of zero-shot classification over every (colour, shape) class, prompted 'a {colour} "
                 "{shape}', on the single-object evaluation images: all of them, the combinations seen in "
                 "training and the held-out ones; colour-only and shape-only accuracy show which attribute the "
                 "model learned. Chance = 1 / number of classes. No published counterpart (a synthetic world)."),
        rule=args.rule, command=f"clipxai {NAME}", inputs=[str(p) for p in paths], section="zeroshot")
    return 0
