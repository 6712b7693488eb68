"""Verb ``table-grounding``: the CLIP-grounding table (rows T2I / I2T, one column per method), from score summaries.

Writes a tidy CSV (one row per data set x model x method x direction x mode) and a Markdown rendering in the
paper's layout, one block per (data set, model, mode, metric).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clipxai.errors import InputError
from clipxai.io import write_csv, write_text

NAME = "table-grounding"
HELP = "the grounding table (T2I/I2T x methods) from score-grounding summaries"

SUMMARY_COLUMNS = ["direction", "mode", "n_entries", "n_excluded", "macro_mean", "macro_lo", "macro_hi",
                   "fg_mean", "fg_lo", "fg_hi"]
DIRECTION_LABEL = {"t2i": "Text -> image", "i2t": "Image -> text"}


def add_arguments(parser) -> None:
    parser.add_argument("--summaries", nargs="+", required=True,
                        help="results/<dataset>/<model>/scores/grounding/<method>_summary.csv files")
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-md", required=True)


def read_summary(path: Path) -> pd.DataFrame:
    """Read one summary; data set, model and method come from its path (declared once in rules/common.smk)."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, "(file)", f"a score-grounding summary CSV ({err})") from None
    missing = [c for c in SUMMARY_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(path, missing[0], "a column of the score-grounding summary")
    parts = path.parts
    if len(parts) < 6 or parts[-2] != "grounding" or not path.name.endswith("_summary.csv"):
        raise InputError(path, "(path)", "results/<dataset>/<model>/scores/grounding/<method>_summary.csv")
    frame.insert(0, "method", path.name[: -len("_summary.csv")])
    frame.insert(0, "model", parts[-4])
    frame.insert(0, "dataset", parts[-5])
    return frame


def _cell(row, metric: str) -> str:
    return f"{row[f'{metric}_mean']:.4f} [{row[f'{metric}_lo']:.4f}, {row[f'{metric}_hi']:.4f}]"


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["# Grounding (PROTOCOLS.md C)", "",
             "Mean over entries with bootstrap 95% CI. macro = the paper's two-class macro IoU; fg = foreground IoU.",
             ""]
    methods = list(dict.fromkeys(table["method"]))
    for (dataset, model, mode), block in table.groupby(["dataset", "model", "mode"], sort=True):
        for metric in ("macro", "fg"):
            lines += [f"## {dataset} / {model} / {mode} / {metric} IoU", "",
                      "| direction | " + " | ".join(methods) + " |",
                      "|---|" + "---|" * len(methods)]
            for direction in ("t2i", "i2t"):
                rows = block[block["direction"] == direction].set_index("method")
                cells = [_cell(rows.loc[m], metric) if m in rows.index else "-" for m in methods]
                lines.append(f"| {DIRECTION_LABEL[direction]} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def run(args) -> int:
    table = pd.concat([read_summary(Path(p)) for p in args.summaries], ignore_index=True)
    table = table.sort_values(["dataset", "model", "method", "direction", "mode"], kind="stable")
    write_csv(args.out_csv, table)
    write_text(args.out_md, to_markdown(table))
    return 0
