"""Verb ``figure-faithfulness``: the mean perturbation curves of every method, per direction and curve."""

from __future__ import annotations

from clipxai.viz.provenance import save_figure, write_sidecar
from clipxai.commands import _args

NAME = "figure-faithfulness"
HELP = "figure: mean deletion / insertion / negative-perturbation curves per method (both directions)"
RULE = "figure_faithfulness"


def add_arguments(parser) -> None:
    parser.add_argument("--entries", nargs="+", action="extend", required=True,
                        help="per-entry curves, results/<dataset>/<model>/scores/faithfulness/<method>.csv")
    _args.add_output(parser, "--out", required=True, help="results/figures/<name>.png (.pdf and .json beside it)")
    parser.add_argument("--rule", default=RULE)


def run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from clipxai.metrics.faithfulness import CURVES
    from clipxai.protocols.faithfulness import read_entry_curves

    loaded = [read_entry_curves(p) for p in args.entries]
    panels = list(dict.fromkeys((d, m, direction) for d, m, _, _ in loaded for direction in ("t2i", "i2t")))
    fig, axes = plt.subplots(len(panels), len(CURVES), figsize=(4 * len(CURVES), 2.8 * len(panels)), squeeze=False)
    for row, (dataset, model, direction) in enumerate(panels):
        for col, curve in enumerate(CURVES):
            ax = axes[row][col]
            for d, m, method, frame in loaded:
                if (d, m) != (dataset, model):
                    continue
                block = frame[(frame["direction"] == direction) & (frame["curve"] == curve)
                              & (frame["excluded_reason"] == "")]
                steps = [c for c in block.columns if c.startswith("s") and c[1:].isdigit()]
                if block.empty:
                    continue
                x = np.linspace(0, 1, len(steps))
                style = {"color": "black", "linestyle": "--"} if method == "random" else {}
                ax.plot(x, block[steps].to_numpy().mean(axis=0), label=method, linewidth=1.2, **style)
            verb = "revealed" if curve == "insertion" else "removed"
            order = "least" if curve == "negative" else "most"
            ax.set_title(f"{dataset} / {model}, {direction}: {curve}", fontsize=9)
            parts = "patches" if direction == "t2i" else "tokens"
            ax.set_xlabel(f"fraction of {parts} {verb} ({order} relevant first)", fontsize=8)
            ax.set_ylabel("cosine similarity", fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(fig, args.out)
    plt.close(fig)
    write_sidecar(args.out, title="Faithfulness: mean perturbation curves",
                  caption=("Mean image-text cosine similarity over entries as image patches (t2i) or caption tokens "
                           "(i2t) are removed or revealed in each method's relevance order; random maps dashed."),
                  rule=args.rule, command=f"clipxai {NAME}", inputs=[str(p) for p in args.entries],
                  section="grounding")
    return 0
