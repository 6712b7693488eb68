"""Verb ``figure-grounding-bars``: the grounding table as bars with their bootstrap 95% intervals.

One panel per (data set, model) and direction (text->image, image->text), each titled with its direction; in a
panel one group of bars per method, faithful and corrected protocol side by side. The y axis is the paper's
metric (two-class macro IoU). Numbers come from results/tables/grounding.csv only.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from clipxai.artifacts.tables import read_result_csv  # noqa: E402
from clipxai.errors import InputError  # noqa: E402
from clipxai.viz.provenance import publish_figure  # noqa: E402
from clipxai.commands import _args  # noqa: E402

NAME = "figure-grounding-bars"
HELP = "bar chart of the grounding table (macro IoU with bootstrap 95% CI), one panel per direction"
RULE = "figure_grounding_bars"
DIRECTION_TITLE = {"t2i": "text -> image", "i2t": "image -> text"}
MODE_STYLE = {"faithful": {"color": "#4c72b0"}, "corrected": {"color": "#dd8452", "hatch": "//"}}
NEEDED = ["dataset", "model", "method", "direction", "mode", "macro_mean", "macro_lo", "macro_hi"]


def add_arguments(parser) -> None:
    parser.add_argument("--table", required=True, help="results/tables/grounding.csv")
    parser.add_argument("--metric", default="macro", choices=["macro", "fg"])
    parser.add_argument("--rule", default=RULE)
    _args.add_output(parser, "--out", required=True, help="output .png (a .pdf and a .json sidecar go beside it)")


def run(args) -> int:
    needed = [c.replace("macro", args.metric) for c in NEEDED]
    table = read_result_csv(args.table, needed, "the grounding table CSV",
                            "a column of the grounding table (clipxai table-grounding)")
    if table.empty:
        raise InputError(args.table, "(rows)", "at least one row")
    blocks = list(dict.fromkeys(zip(table["dataset"], table["model"])))
    directions = [d for d in ("t2i", "i2t") if d in set(table["direction"])]
    methods = list(dict.fromkeys(table["method"]))
    modes = [m for m in ("faithful", "corrected") if m in set(table["mode"])]
    fig, axes = plt.subplots(len(blocks), len(directions), figsize=(1.2 + 1.3 * len(methods) * len(directions),
                                                                       2.9 * len(blocks)), squeeze=False)
    width = 0.8 / max(len(modes), 1)
    top = float(table[f"{args.metric}_hi"].max())
    for r, (dataset, model) in enumerate(blocks):
        for c, direction in enumerate(directions):
            ax = axes[r, c]
            rows = table[(table["dataset"] == dataset) & (table["model"] == model) & (table["direction"] == direction)]
            for k, mode in enumerate(modes):
                sub = rows[rows["mode"] == mode].set_index("method").reindex(methods)
                mean = sub[f"{args.metric}_mean"].to_numpy(float)
                errors = np.vstack([mean - sub[f"{args.metric}_lo"].to_numpy(float),
                                    sub[f"{args.metric}_hi"].to_numpy(float) - mean])
                x = np.arange(len(methods)) + (k - (len(modes) - 1) / 2) * width
                ax.bar(x, mean, width, yerr=errors, capsize=3, label=mode, edgecolor="black", linewidth=0.5,
                       **MODE_STYLE.get(mode, {}))
            ax.set_xticks(np.arange(len(methods)), methods, rotation=20, fontsize=8)
            ax.set_ylim(0, max(1.0, top * 1.05) if args.metric == "macro" else top * 1.15 + 1e-6)
            ax.set_title(f"{DIRECTION_TITLE.get(direction, direction)} ({dataset} / {model})", fontsize=9,
                         parse_math=False)
            ax.set_ylabel(f"{args.metric} IoU" if c == 0 else "", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
            if r == 0 and c == len(directions) - 1:
                ax.legend(fontsize=7, title="protocol", title_fontsize=7)
    fig.tight_layout()
    publish_figure(
        fig, args.out, title="Grounding: every method, both directions",
        caption=(f"Mean {args.metric} IoU over entries with bootstrap 95% intervals (error bars), from the grounding "
                 "table; one panel per direction and (data set, model), faithful (solid) and corrected (hatched) "
                 "protocol side by side."),
        rule=args.rule, command=f"clipxai {NAME}", inputs=[str(Path(args.table))], section="grounding")
    return 0
