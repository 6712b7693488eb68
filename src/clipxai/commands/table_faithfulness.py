"""Verb ``table-faithfulness``: area under each perturbation curve per method, with bootstrap CIs, against random.

One row per (data set, model, method, direction, curve): the mean area under the similarity curve over the scored
entries with its bootstrap 95% CI, and the paired difference from the random maps' area on the same entries (a
faithful map: deletion below random, insertion and negative perturbation above it). ``deletion`` is also Chefer
et al.'s positive perturbation (the same order: most relevant first).
"""

from __future__ import annotations

import pandas as pd

from clipxai.errors import InputError
from clipxai.io import write_csv
from clipxai.viz.provenance import write_sidecar
from clipxai.commands import _args

NAME = "table-faithfulness"
HELP = "faithfulness table: deletion / insertion / negative-perturbation AUC per method with 95% CIs vs random"
RULE = "table_faithfulness"
COLUMNS = ["dataset", "model", "method", "direction", "curve", "n_entries", "n_excluded", "auc_mean", "auc_lo",
           "auc_hi", "vs_random_mean", "vs_random_lo", "vs_random_hi", "better_than_random", "n_dataset_entries",
           "complete"]


def add_arguments(parser) -> None:
    parser.add_argument("--entries", nargs="+", action="extend", required=True,
                        help="per-entry curves, results/<dataset>/<model>/scores/faithfulness/<method>.csv")
    parser.add_argument("--random", default="random", help="the method label of the random maps (the floor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=1000)
    _args.add_output(parser, "--out", required=True, help="results/tables/faithfulness.csv (a .json sidecar beside it)")
    parser.add_argument("--rule", default=RULE)


def _coverage(block: pd.DataFrame) -> dict:
    """``n_dataset_entries`` (entries with maps in this direction) and ``complete`` (all of them curved, no
    ``--max-entries``) of one (method, direction, curve) block."""
    if block.empty:
        return {"n_dataset_entries": 0, "complete": True}
    total = int(block["n_dataset_entries"].max())
    return {"n_dataset_entries": total, "complete": bool(len(block) >= total)}


def summarise(frames: dict[tuple[str, str, str], pd.DataFrame], random_label: str, seed: int,
              n_resamples: int) -> pd.DataFrame:
    from clipxai.metrics import bootstrap
    from clipxai.metrics.faithfulness import CURVES, HIGHER_IS_BETTER

    records = []
    for (dataset, model, method), frame in frames.items():
        floor = frames.get((dataset, model, random_label))
        for direction in ("t2i", "i2t"):
            for curve in CURVES:
                block = frame[(frame["direction"] == direction) & (frame["curve"] == curve)]
                scored = block[block["excluded_reason"] == ""]
                keys = (dataset, model, method, direction, curve)
                mean, lo, hi = bootstrap.ci(scored["auc"].to_numpy(), seed, n_resamples=n_resamples,
                                            keys=("faithfulness", *keys))
                record = {"dataset": dataset, "model": model, "method": method, "direction": direction,
                          "curve": curve, "n_entries": len(scored), "n_excluded": len(block) - len(scored),
                          "auc_mean": mean, "auc_lo": lo, "auc_hi": hi, "vs_random_mean": float("nan"),
                          "vs_random_lo": float("nan"), "vs_random_hi": float("nan"), "better_than_random": "",
                          **_coverage(block)}
                if floor is not None and method != random_label:
                    base = floor[(floor["direction"] == direction) & (floor["curve"] == curve)
                                 & (floor["excluded_reason"] == "")].set_index("entry_id")["auc"]
                    paired = scored[scored["entry_id"].isin(base.index)]
                    if len(paired):
                        d_mean, d_lo, d_hi = bootstrap.diff_ci(
                            paired["auc"].to_numpy(), base.loc[paired["entry_id"]].to_numpy(), seed,
                            n_resamples=n_resamples, keys=("faithfulness-vs-random", *keys))
                        better = d_lo > 0 if HIGHER_IS_BETTER[curve] else d_hi < 0
                        worse = d_hi < 0 if HIGHER_IS_BETTER[curve] else d_lo > 0
                        record.update(vs_random_mean=d_mean, vs_random_lo=d_lo, vs_random_hi=d_hi,
                                      better_than_random="yes" if better else "no (worse)" if worse
                                      else "no (CI overlaps)")
                records.append(record)
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def run(args) -> int:
    from clipxai.protocols.faithfulness import read_entry_curves

    frames = {}
    for raw in args.entries:
        dataset, model, method, frame = read_entry_curves(raw)
        if (dataset, model, method) in frames:
            raise InputError(raw, "(path)", f"one file per (dataset, model, method); {method} given twice")
        frames[(dataset, model, method)] = frame
    table = summarise(frames, args.random, args.seed, args.bootstrap)
    write_csv(args.out, table)
    write_sidecar(
        args.out, title="Faithfulness: perturbation curves of the grounding maps (deletion, insertion, negative)",
        caption=("Area under the image-text cosine similarity as the parts a map ranks first are removed (deletion, "
                 "= Chefer et al.'s positive perturbation; lower is more faithful) or revealed onto a blank start "
                 "(insertion; higher is better), and as the parts it ranks last are removed (negative "
                 "perturbation; higher is better), in steps of 10% of the parts. Text->image perturbs image patches "
                 "(replaced by a baseline image), image->text caption tokens (masked to padding). Mean over entries "
                 "with bootstrap 95% CI; vs_random = paired difference from the random maps on the same entries. "
                 "Insertion and negative perturbation visit the same inputs in opposite order, so their areas "
                 "nearly agree. complete = every entry with maps was curved (n_entries + n_excluded of "
                 "n_dataset_entries); fewer with faithfulness.max_entries, a partial run."),
        rule=args.rule, command=f"clipxai {NAME}", inputs=[str(p) for p in args.entries], section="grounding")
    return 0
