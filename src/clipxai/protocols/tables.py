"""Small helpers the table verbs share -- (data set, model) keys read from result paths, result CSVs read with
their errors named -- and the protocols of the summary tables that have no module of their own: the shapes
world's colour-binding subsets (``clipxai table-binding``) and the faithfulness table (``clipxai
table-faithfulness``). Markdown rendering: clipxai.artifacts.tables.markdown_table."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import pandas as pd

from clipxai.artifacts.tables import read_result_csv
from clipxai.errors import InputError


def keys_from_path(path: str | Path, marker: str, depth: int = 2) -> tuple[str, str]:
    """(data set, model) from ``results/<dataset>/<model>/<marker>/...`` (paths are declared in rules/heads.smk).

    ``depth``: how many path parts follow ``<model>`` (the marker folder and the file, by default).
    """
    parts = Path(path).parts
    if len(parts) < depth + 2 or parts[-depth] != marker:
        raise InputError(path, "(path)", f"results/<dataset>/<model>/{marker}/...")
    return parts[-depth - 2], parts[-depth - 1]


def read_csv(path: str | Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, "(file)", f"a {what} CSV ({err.__class__.__name__})") from None


# ------------------------------------------------------------------------------ table-binding: colour subsets

SUBSETS = ("single object", "colour unique", "colour shared")
BINDING_COLUMNS = ["dataset", "model", "method", "subset", "n_entries", "fg_mean", "fg_lo", "fg_hi", "macro_mean",
                   "macro_lo", "macro_hi"]


def colour_subsets(entries) -> dict[str, str]:
    """entry_id -> one of SUBSETS, from the shapes world's category names ("<colour> <shape>").

    The objects of an image are the thing segments its narrative's phrases name.
    """
    objects: dict[tuple, list[str]] = {}
    for entry in entries:
        key = (entry.image_id, entry.narrative_index)
        objects.setdefault(key, [])
        objects[key] += [c for c, thing in zip(entry.categories, entry.isthing) if thing]
    subsets = {}
    for entry in entries:
        things = [c for c, thing in zip(entry.categories, entry.isthing) if thing]
        if len(things) != 1 or len(things[0].split(" ")) != 2:
            continue  # not one "<colour> <shape>" object: not a shapes-world phrase
        image_objects = sorted(set(objects[(entry.image_id, entry.narrative_index)]))
        colours = Counter(category.split(" ")[0] for category in image_objects)
        colour = things[0].split(" ")[0]
        subsets[entry.entry_id] = ("single object" if len(image_objects) == 1
                                   else "colour unique" if colours[colour] == 1 else "colour shared")
    return subsets


def read_grounding_entries(path: Path, mode: str) -> tuple[str, str, str, pd.DataFrame]:
    """(dataset, model, method, its scored text->image rows in ``mode``) of one per-entry scores file."""
    if len(path.parts) < 5 or path.parts[-2] != "grounding":
        raise InputError(path, "(path)", "results/<dataset>/<model>/scores/grounding/<method>.csv")
    frame = read_result_csv(path, ("entry_id", "direction", "mode", "fg_iou", "macro_iou", "excluded_reason"),
                            "per-entry grounding scores", "a column of the per-entry scores (clipxai score-grounding)",
                            dtype={"entry_id": str}, keep_default_na=False, na_values=[""])
    scored = frame["excluded_reason"].fillna("") == ""
    rows = frame[(frame["direction"] == "t2i") & (frame["mode"] == mode) & scored]
    return path.parts[-5], path.parts[-4], path.stem, rows


def binding_table(entries: Sequence[str], roots: dict[str, str], split: str, mode: str, seed: int,
                  n_resamples: int) -> pd.DataFrame:
    """Per (data set, model, method, subset): mean foreground and macro IoU with bootstrap 95% CIs of the
    per-entry scores files ``entries``, over each data set's (``roots``) colour subsets."""
    from clipxai.data import png
    from clipxai.metrics import bootstrap

    subsets_of: dict[str, dict[str, str]] = {}
    records = []
    for raw in entries:
        dataset, model, method, rows = read_grounding_entries(Path(raw), mode)
        if dataset not in roots:
            raise InputError(raw, "(path)", f"scores of a data set given with --data ({', '.join(roots)})")
        if dataset not in subsets_of:
            subsets_of[dataset] = colour_subsets(png.load(roots[dataset], split).entries)
        subset = rows["entry_id"].map(subsets_of[dataset])
        for name in SUBSETS:
            block = rows[subset == name]
            record = {"dataset": dataset, "model": model, "method": method, "subset": name, "n_entries": len(block)}
            for metric in ("fg", "macro"):
                mean, lo, hi = bootstrap.ci(block[f"{metric}_iou"].to_numpy(), seed, n_resamples=n_resamples,
                                            keys=("binding", dataset, model, method, name, metric))
                record.update({f"{metric}_mean": mean, f"{metric}_lo": lo, f"{metric}_hi": hi})
            records.append(record)
    return pd.DataFrame.from_records(records, columns=BINDING_COLUMNS)


# ------------------------------------------------------------------- table-faithfulness: areas against random

FAITHFULNESS_COLUMNS = ["dataset", "model", "method", "direction", "curve", "n_entries", "n_excluded", "auc_mean",
                        "auc_lo", "auc_hi", "vs_random_mean", "vs_random_lo", "vs_random_hi", "better_than_random",
                        "n_dataset_entries", "complete"]


def _coverage(block: pd.DataFrame) -> dict:
    """``n_dataset_entries`` (entries with maps in this direction) and ``complete`` (all of them curved, no
    ``--max-entries``) of one (method, direction, curve) block."""
    if block.empty:
        return {"n_dataset_entries": 0, "complete": True}
    total = int(block["n_dataset_entries"].max())
    return {"n_dataset_entries": total, "complete": bool(len(block) >= total)}


def faithfulness_table(frames: dict[tuple[str, str, str], pd.DataFrame], random_label: str, seed: int,
                       n_resamples: int) -> pd.DataFrame:
    """Per (data set, model, method, direction, curve) of the per-entry curves ``frames``: mean area with its
    bootstrap 95% CI, and the paired difference from the ``random_label`` maps' area on the same entries."""
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
    return pd.DataFrame.from_records(records, columns=FAITHFULNESS_COLUMNS)
