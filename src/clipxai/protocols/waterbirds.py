"""Waterbirds worst-group accuracy before and after mean-ablating heads, from stored decompositions.

Binary zero-shot classification (the two bird classes) of the test split's image embeddings, rebuilt as the sum of
their residual-stream terms; accuracy per (y, place) group and the worst group's. Ablated: the chosen heads'
terms replaced by their mean over a reference split -- the validation split (corrected: the test images never
inform the intervention) -- and over the test split itself. The original (TextSpan's compute_use_specific_heads.py)
also mean-ablated, over the evaluated images, every head of the layers before the last K and every MLP term; that
setting is reported with and without the chosen heads (faithful). A control draws as many heads at random from the
same candidate heads (the explained layers, the chosen ones excluded), so a reader sees whether removing *these*
heads matters or removing any would.

Everything works shard by shard on memory-mapped decompositions: only [images, D] embeddings are ever in memory.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from clipxai import seeding
from clipxai.artifacts.tables import markdown_table
from clipxai.data._json import read_json
from clipxai.errors import InputError
from clipxai.heads import ablation
from clipxai.metrics.classification import group_accuracy
from clipxai.protocols.tables import keys_from_path, read_csv

GROUPS = ((0, 0), (0, 1), (1, 0), (1, 1))


@dataclass
class Split:
    """The decomposition shards of one split, loaded lazily (memory-mapped)."""

    parts: list[dict]

    @classmethod
    def load(cls, paths: Sequence[str]) -> "Split":
        from clipxai.models.decompose import load_decomposition

        parts = [load_decomposition(path) for path in paths]
        shapes = {p["attn"].shape[1:] for p in parts}
        if len(shapes) != 1:
            raise InputError(paths[0], "attn", f"shards of one model (one [L, H, D]), got {sorted(shapes)}")
        for path, part in zip(paths, parts):
            if "ids" not in part or "labels" not in part:
                raise InputError(path, "ids/labels", "image ids and labels stored with the decomposition")
        return cls(parts)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.parts[0]["attn"].shape[1:])  # (L, H, D)

    @property
    def ids(self) -> list[str]:
        return [str(i) for part in self.parts for i in np.asarray(part["ids"]).tolist()]

    @property
    def labels(self) -> np.ndarray:
        return np.concatenate([np.asarray(part["labels"]) for part in self.parts]).astype(np.int64)

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean of every head [L, H, D] and MLP term [L + 1, D] over all images of the split."""
        total = sum(len(part["attn"]) for part in self.parts)
        attn_sum, mlp_sum = 0.0, 0.0
        for part in self.parts:
            attn_mean, mlp_mean = ablation.component_means(part["attn"], part["mlp"])
            attn_sum = attn_sum + attn_mean * len(part["attn"])
            mlp_sum = mlp_sum + mlp_mean * len(part["mlp"])
        return attn_sum / total, mlp_sum / total

    def embeddings(self, heads: Sequence[tuple[int, int]] = (), early_layers: int = 0, mlps: bool = False,
                   means: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Image embeddings [n, D] with ``heads``, every head of the first ``early_layers`` layers and (``mlps``)
        every MLP / embedding term mean-ablated; means: this split's own unless given."""
        layers, n_heads, _ = self.shape
        plan = ablation.Ablation.of(layers, n_heads, ablate_heads=heads, ablate_layers=range(early_layers),
                                    ablate_mlps=range(layers + 1) if mlps else ())
        if (plan.heads.any() or plan.mlps.any()) and means is None:
            means = self.means()
        return np.concatenate([ablation.ablated_embeddings(part["attn"], part["mlp"], plan, means)
                               for part in self.parts])


def group_names(class_names: Sequence[str], place_names: Sequence[str]) -> dict[tuple[int, int], str]:
    """(y, place) -> "landbird on water" style names."""
    return {(y, p): f"{class_names[y]} on {place_names[p]}" for y, p in GROUPS}


def scores(embeddings: np.ndarray, classifier: np.ndarray, y: np.ndarray, place: np.ndarray) -> dict:
    """Group accuracies of zero-shot predictions (``clipxai.metrics.classification.group_accuracy``)."""
    predicted = (embeddings @ np.asarray(classifier, dtype=np.float64)).argmax(1)
    return group_accuracy(predicted == y, y, place)


def control_sets(pool: Sequence[tuple[int, int]], size: int, wanted: int, seed: int) -> list[list[tuple[int, int]]]:
    """Up to ``wanted`` distinct sets of ``size`` heads from ``pool``: all of them when there are no more than
    ``wanted`` (so a small pool is not sampled twice over), else a seeded draw of ``wanted`` different ones."""
    if wanted < 1 or size < 1 or len(pool) < size:
        return []
    pool = sorted(pool)
    if math.comb(len(pool), size) <= wanted:
        return [list(heads) for heads in itertools.combinations(pool, size)]
    draw, seen, sets = seeding.rng(seed, "waterbirds-control"), set(), []
    while len(sets) < wanted:
        heads = tuple(sorted(pool[i] for i in draw.choice(len(pool), size, replace=False)))
        if heads not in seen:
            seen.add(heads)
            sets.append(list(heads))
    return sets


def evaluate(test: Split, reference: Split, classifier: np.ndarray, place: np.ndarray,
             chosen: Sequence[tuple[int, int]], candidates: Sequence[tuple[int, int]], seed: int,
             controls: int, last_layers: int) -> list[dict]:
    """One row per condition: no ablation; chosen heads ablated with reference means (corrected) and with the
    test split's own means; the original's setting (heads before the last ``last_layers`` layers and all MLPs
    ablated too, the test split's means) with and without the chosen heads; ``controls`` draws of as many random
    candidate heads (reference means)."""
    y = test.labels
    if classifier.shape[1] != 2 or classifier.shape[0] != test.shape[2]:
        raise InputError("classifier", "shape", f"[{test.shape[2]}, 2] (two bird classes), got {classifier.shape}")
    if test.shape != reference.shape:
        raise InputError("reference", "attn", f"the test decomposition's [L, H, D] {test.shape}, got "
                         f"{reference.shape}")
    chosen = [tuple(map(int, pair)) for pair in chosen]
    if not 1 <= last_layers <= test.shape[0]:
        raise InputError("--layers", "K", f"between 1 and {test.shape[0]} (the model's layers), got {last_layers}")
    early = test.shape[0] - last_layers
    reference_means = reference.means()

    def row(condition: str, means_from: str, heads: Sequence[tuple[int, int]], results: list[dict]) -> dict:
        worst = np.array([r["worst_group"] for r in results])
        out = {"condition": condition, "means_from": means_from, "n_heads": len(heads),
               "heads": " ".join(f"L{layer}.H{head}" for layer, head in heads), "draws": len(results)}
        for group in GROUPS:
            out[f"acc_y{group[0]}_p{group[1]}"] = float(np.mean([r["groups"].get(group, {"accuracy": np.nan})
                                                                 ["accuracy"] for r in results]))
            out[f"n_y{group[0]}_p{group[1]}"] = int(results[0]["groups"].get(group, {"n": 0})["n"])
        out.update({"mean": float(np.mean([r["mean"] for r in results])),
                    "group_mean": float(np.mean([r["group_mean"] for r in results])),
                    "worst_group": float(worst.mean()), "worst_group_sd": float(worst.std()) if len(worst) > 1 else 0.0,
                    # the worst group's name is only defined for a single evaluation (draws differ)
                    "worst": f"y{results[0]['worst'][0]}_p{results[0]['worst'][1]}" if len(results) == 1 else ""})
        return out

    base = scores(test.embeddings(), classifier, y, place)
    rows = [row("no ablation", "", [], [base])]
    if chosen:
        rows.append(row("selected heads mean-ablated", "reference split (corrected)", chosen,
                        [scores(test.embeddings(chosen, means=reference_means), classifier, y, place)]))
        rows.append(row("selected heads mean-ablated", "evaluated split", chosen,
                        [scores(test.embeddings(chosen), classifier, y, place)]))
        rows.append(row(f"original setting: MLPs and layers < {early} mean-ablated", "evaluated split (faithful)", [],
                        [scores(test.embeddings(early_layers=early, mlps=True), classifier, y, place)]))
        rows.append(row("original setting + selected heads mean-ablated", "evaluated split (faithful)", chosen,
                        [scores(test.embeddings(chosen, early_layers=early, mlps=True), classifier, y, place)]))
        pool = [tuple(map(int, pair)) for pair in candidates if tuple(map(int, pair)) not in set(chosen)]
        head_sets = control_sets(pool, len(chosen), controls, seed)
        if head_sets:
            draws = [scores(test.embeddings(heads, means=reference_means), classifier, y, place)
                     for heads in head_sets]
            plural = "s" if len(head_sets) != 1 else ""
            rows.append(row(f"random heads mean-ablated (control, {len(head_sets)} distinct set{plural})",
                            "reference split (corrected)", head_sets[0] if len(head_sets) == 1 else [], draws)
                        | {"n_heads": len(chosen)})
    for out in rows:
        out["worst_group_change"] = out["worst_group"] - rows[0]["worst_group"]
        out["mean_change"] = out["mean"] - rows[0]["mean"]
    return rows


def finding(rows: list[dict], controls_requested: bool = True, tolerance: float = 1e-9) -> str:
    """One sentence: did mean-ablating the selected heads (reference means) raise worst-group accuracy, by how much."""
    before = rows[0]
    after = next((r for r in rows[1:] if r["condition"] == "selected heads mean-ablated"
                  and r["means_from"].startswith("reference")), None)
    if after is None:
        return (f"No head's texts matched the place words, so nothing was ablated; worst-group accuracy stays "
                f"{100 * before['worst_group']:.1f}%.")
    change = after["worst_group_change"]
    verb = "raised" if change > tolerance else "lowered" if change < -tolerance else "did not change"
    amount = f" by {100 * abs(change):.1f} points" if verb != "did not change" else ""
    text = (f"Mean-ablating {after['n_heads']} selected head(s) ({after['heads']}) {verb} worst-group accuracy"
            f"{amount}: {100 * before['worst_group']:.1f}% -> {100 * after['worst_group']:.1f}% (means from the "
            f"reference split; mean accuracy {100 * before['mean']:.1f}% -> {100 * after['mean']:.1f}%).")
    setting = [r for r in rows if r["condition"].startswith("original setting")]
    if len(setting) == 2:
        text += (f" In the original's setting (MLPs and early layers also mean-ablated over the test images) worst "
                 f"group {100 * setting[0]['worst_group']:.1f}% without and {100 * setting[1]['worst_group']:.1f}% "
                 f"with the selected heads ablated.")
    control = next((r for r in rows if r["condition"].startswith("random heads")), None)
    if control is None and controls_requested:
        text += " (No random-head control: fewer other candidate heads than selected ones.)"
    if control is not None:
        text += (f" Ablating as many random heads instead: worst group {100 * control['worst_group']:.1f}% "
                 f"(sd {100 * control['worst_group_sd']:.1f} over {control['draws']} distinct head "
                 f"set{'s' if control['draws'] != 1 else ''}).")
    return text


# ------------------------------------------------------------------------- the table of clipxai table-waterbirds

TABLE_GROUP_COLUMNS = ["acc_y0_p0", "acc_y0_p1", "acc_y1_p0", "acc_y1_p1"]


def read_finding(path: Path) -> dict:
    """The JSON beside a waterbirds-ablation CSV, checked for its finding and group names."""
    meta_path = path.with_suffix(".json")
    meta = read_json(meta_path, "the JSON written by `clipxai waterbirds-ablation`")
    for key in ("finding", "groups"):
        if key not in meta:
            raise InputError(meta_path, key, "a key of the waterbirds-ablation JSON")
    return meta


def ablation_table(paths: Sequence[str | Path]) -> tuple[pd.DataFrame, str, list[str]]:
    """The waterbirds-ablation CSVs at ``paths`` (a JSON beside each) as one table, its Markdown (a block per data
    set and model, in percent) and the finding of each, "<dataset> / <model>: <finding>"."""
    frames, blocks, findings = [], ["# Waterbirds: worst-group accuracy and place heads\n"], []
    for path in map(Path, paths):
        dataset, model = keys_from_path(path, "waterbirds")
        frame = read_csv(path, "waterbirds-ablation")
        missing = [c for c in ["condition", "means_from", "worst_group", *TABLE_GROUP_COLUMNS]
                   if c not in frame.columns]
        if missing:
            raise InputError(path, missing[0], "a column of the waterbirds-ablation CSV")
        meta = read_finding(path)
        frames.append(frame.assign(dataset=dataset, model=model, finding=meta["finding"]))
        shown = frame[["condition", "means_from", "n_heads", "heads"]].copy()
        for column in TABLE_GROUP_COLUMNS:
            shown[f"{meta['groups'][column[4:]]} (%)"] = 100 * frame[column].astype(float)
        shown["mean (%)"] = 100 * frame["mean"].astype(float)
        shown["worst group (%)"] = 100 * frame["worst_group"].astype(float)
        shown["change (points)"] = 100 * frame["worst_group_change"].astype(float)
        blocks.append(f"## {dataset} / {model}\n\n**Finding:** {meta['finding']}\n\n"
                      f"{markdown_table(shown, 1, escape_pipes=True)}")
        findings.append(f"{dataset} / {model}: {meta['finding']}")
    table = pd.concat(frames, ignore_index=True)
    table = table[["dataset", "model", *[c for c in table.columns if c not in ("dataset", "model")]]]
    return table, "\n".join(blocks), findings
