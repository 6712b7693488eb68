"""The head-explanation tables of ``clipxai table-heads``, from ``explain-heads`` outputs of every data set, model
and algorithm (TextSpan; principal components, faithful and corrected rank).

- texts: per head of the last K layers, the texts that describe it -- TextSpan's chosen texts in order with the
  variance they explain; for the principal variant one row per kept component with its top and bottom texts;
- accuracy: per data set x model x algorithm, zero-shot accuracy of the unchanged model, with the layers before
  the last K mean-ablated, and with the last K layers' heads also replaced by their text reconstructions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from clipxai.artifacts.tables import HEAD_TEXT_COLUMNS, markdown_table
from clipxai.errors import InputError
from clipxai.protocols.tables import keys_from_path, read_csv

TEXT_COLUMNS = ["dataset", "model", "algorithm", "layer", "head", "component", "share", "top_texts", "bottom_texts"]
ACCURACY_COLUMNS = ["dataset", "model", "algorithm", "n_images", "n_texts", "layers", "m", "unique_texts",
                    "mean_components_kept", "baseline_accuracy", "mean_ablated_accuracy", "reconstructed_accuracy",
                    "means_from"]
MARKDOWN_COMPONENTS = 3  # components per head shown in Markdown (the CSV has all)
Modes = dict[tuple[str, str, str], str]  # (data set, model, algorithm) -> mode, of the principal variant's runs


def text_rows(frame: pd.DataFrame, dataset: str, model: str, algorithm: str) -> list[dict]:
    """Rows of the texts table for one explain-heads CSV."""
    rows = []
    if (frame["side"] == "top").all() and (frame["position"] == 0).all():  # TextSpan: one text per rank
        for (layer, head), block in frame.groupby(["layer", "head"], sort=True):
            block = block.sort_values("rank")
            rows.append({"dataset": dataset, "model": model, "algorithm": algorithm, "layer": int(layer),
                         "head": int(head), "component": "", "share": float(block["variance_explained"].sum()),
                         "top_texts": "; ".join(block["text"]), "bottom_texts": ""})
        return rows
    for (layer, head, component), block in frame.groupby(["layer", "head", "rank"], sort=True):
        top = block[block["side"] == "top"].sort_values("position")
        bottom = block[block["side"] == "bottom"].sort_values("position")
        rows.append({"dataset": dataset, "model": model, "algorithm": algorithm, "layer": int(layer),
                     "head": int(head), "component": int(component), "share": float(block["variance_explained"].iloc[0]),
                     "top_texts": "; ".join(top["text"]), "bottom_texts": "; ".join(bottom["text"])})
    return rows


def head_tables(paths: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame, Modes]:
    """The texts and accuracy tables of the explain-heads CSVs at ``paths`` (each with its summary JSON beside it),
    and the mode of each principal-variant run."""
    texts, accuracy = [], []
    principal_modes: Modes = {}
    for path in map(Path, paths):
        dataset, model = keys_from_path(path, "heads")
        algorithm = path.stem
        frame = read_csv(path, "explain-heads")
        frame["text"] = frame["text"].fillna("").astype(str)
        missing = [c for c in HEAD_TEXT_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(path, missing[0], "a column of the explain-heads CSV")
        texts += text_rows(frame, dataset, model, algorithm)
        summary_path = path.with_suffix(".json")
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(summary_path, "(file)", f"the summary JSON of explain-heads ({err})") from None
        accuracy.append({"dataset": dataset, "model": model, "algorithm": algorithm,
                         **{k: summary.get(k) for k in ACCURACY_COLUMNS[3:]}})
        if summary.get("algorithm") == "principal":
            principal_modes[(dataset, model, algorithm)] = summary.get("mode")
    return (pd.DataFrame(texts, columns=TEXT_COLUMNS), pd.DataFrame(accuracy, columns=ACCURACY_COLUMNS),
            principal_modes)


def _markdown(frame: pd.DataFrame, digits: int) -> str:
    return markdown_table(frame, digits, escape_pipes=True)  # texts are free text


def principal_modes_side_by_side(text_table: pd.DataFrame, modes: Modes) -> list[str]:
    """Markdown blocks, per (data set, model) explained by the principal variant in both modes: each head's kept
    components and their shares, faithful beside corrected. The components are the same in both (one SVD); the
    modes differ in the rank kept (99% of the singular values or of the variance) and in the share's definition
    (s_i over the kept singular values, or s_i^2 over the total variance: clipxai.heads.principal)."""
    blocks = []
    for (dataset, model), block in text_table.groupby(["dataset", "model"], sort=False):
        labels = {mode: [a for (d, m, a), mode_of in modes.items() if (d, m) == (dataset, model) and mode_of == mode]
                  for mode in ("faithful", "corrected")}
        if not labels["faithful"] or not labels["corrected"]:
            continue
        faithful_label, corrected_label = labels["faithful"][0], labels["corrected"][0]
        keys = ["layer", "head", "component"]
        sides = [block[block["algorithm"] == label][keys + ["share", "top_texts"]].rename(
            columns={"share": f"share {mode}", "top_texts": f"top texts {mode}"})
            for mode, label in (("faithful", faithful_label), ("corrected", corrected_label))]
        merged = sides[0].merge(sides[1], on=keys, how="outer").sort_values(keys, kind="stable")
        kept = merged.groupby(["layer", "head"]).agg(
            faithful=("share faithful", "count"), corrected=("share corrected", "count"))
        merged = merged[merged["component"].astype(int) < MARKDOWN_COMPONENTS]
        heads = list(zip(merged["layer"], merged["head"]))
        shown = pd.DataFrame({
            "head": [f"L{layer}.H{head}" for layer, head in heads],
            "kept (faithful/corrected)": [f"{kept.loc[key, 'faithful']}/{kept.loc[key, 'corrected']}" for key in heads],
            "component": merged["component"].astype(int).to_numpy(),
            "share faithful": merged["share faithful"].to_numpy(),
            "share corrected": merged["share corrected"].to_numpy(),
            # the same components in both modes, so the same texts where both keep one: shown once
            "top texts": merged["top texts faithful"].fillna(merged["top texts corrected"]).to_numpy()})
        blocks.append(f"## {dataset} / {model} / principal: {faithful_label} vs {corrected_label}\n\n"
                      f"{_markdown(shown, digits=3)}")
    return blocks


def texts_markdown(text_table: pd.DataFrame, principal_modes: Modes) -> str:
    """The texts table in Markdown: a block per run (at most MARKDOWN_COMPONENTS components per head), then the
    principal variant's two modes side by side."""
    blocks = ["# What the last layers' heads write, in words\n"]
    for (dataset, model, algorithm), block in text_table.groupby(["dataset", "model", "algorithm"], sort=False):
        shown = block.copy()
        shown["head"] = [f"L{l}.H{h}" for l, h in zip(shown["layer"], shown["head"])]
        if (shown["component"] == "").all():
            shown = shown[["head", "share", "top_texts"]].rename(columns={"share": "variance explained",
                                                                          "top_texts": "texts (in order chosen)"})
        else:
            shown = shown[shown["component"].astype(int) < MARKDOWN_COMPONENTS]
            shown = shown[["head", "component", "share", "top_texts", "bottom_texts"]]
        blocks.append(f"## {dataset} / {model} / {algorithm}\n\n{_markdown(shown, digits=3)}")
    blocks += principal_modes_side_by_side(text_table, principal_modes)
    return "\n".join(blocks)


def accuracy_markdown(accuracy_table: pd.DataFrame) -> str:
    """The accuracy table in Markdown, accuracies in percent."""
    shown = accuracy_table.copy()
    for column in ("baseline_accuracy", "mean_ablated_accuracy", "reconstructed_accuracy"):
        shown[column] = 100 * pd.to_numeric(shown[column], errors="coerce")
    return ("# Zero-shot accuracy (%) with heads replaced by their text reconstructions\n\n"
            + _markdown(shown, digits=2))
