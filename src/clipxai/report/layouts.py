"""How a table is laid out in the report, chosen by its sidecar's ``layout``.

- ``grounding`` (clipxai table-grounding): the CLIP-grounding paper's layout, rows T2I / I2T, columns Random /
  CLIP-Unimodal / CLIP (reported.yaml ``grounding.columns``), reproduced [95% CI] and published per cell; faithful
  vs corrected protocol side by side; entries excluded and why (:func:`grounding_blocks`).
- anything else (:func:`generic_view`): every column as is. A table that reproduces published numbers has a column
  ``reported`` (an id of reported.yaml ``published``) and a column ``value`` (fraction scale; ``lo`` / ``hi`` for
  its 95% CI): the report adds the published value and the difference.
"""

from __future__ import annotations

import pandas as pd

from clipxai.artifacts.tables import coverage_text
from clipxai.method_table import METHOD_MAPS_TEXT
from clipxai.report.reported import compare

MAX_GENERIC_ROWS = 300


# --------------------------------------------------------------------------------------------- grounding layout


def runs_column(method: str, params: dict, column: dict) -> bool:
    """Whether a configured method (registry name, parameters as configured) runs a published column's setting.

    Parameters left out of the config take the registry's defaults, which reported.yaml states per column
    (``defaults``; tests/test_report.py checks them against the registry, so the report needs no torch).
    """
    merged = {**column.get("defaults", {}), **params}
    return method == column["method"] and all(merged.get(k) == v for k, v in column["params"].items())


def setting_matches(config: dict, dataset: str, model: str, applies_to: dict) -> bool:
    """Whether (data set, model) of this run is the published setting of reported.yaml ``grounding.applies_to``."""
    dataset_spec = config.get("datasets", {}).get(dataset, {})
    model_spec = config.get("models", {}).get(model, {})
    return (dataset_spec.get("kind") == applies_to.get("dataset_kind")
            and model_spec.get("kind") == "open_clip"
            and model_spec.get("name") == applies_to.get("model_name")
            and (model_spec.get("pretrained") or "") == applies_to.get("pretrained", ""))


def _ci(row, metric: str = "macro") -> dict:
    return {"mean": float(row[f"{metric}_mean"]), "lo": float(row[f"{metric}_lo"]), "hi": float(row[f"{metric}_hi"]),
            "n": int(row["n_entries"]), "excluded": int(row["n_excluded"])}


def _short_split(block: pd.DataFrame, config: dict, dataset: str, layout: dict) -> str | None:
    """``"N of M entries"`` where the data set is of the published kind but its split holds fewer T2I entries than
    the published one (a subset or a miniature copy: every entry of it may be in scope, yet it is not the
    published data); None otherwise."""
    published = (layout.get("n_entries") or {}).get("t2i")
    kind = config.get("datasets", {}).get(dataset, {}).get("kind")
    if not published or kind != (layout.get("applies_to") or {}).get("dataset_kind"):
        return None
    t2i = block[block["direction"] == "t2i"]
    if t2i.empty or "n_dataset_entries" not in t2i:
        return None
    held = int(t2i["n_dataset_entries"].max())
    return f"{held} of {int(published)} entries" if held < int(published) else None


def grounding_blocks(table: pd.DataFrame, exclusions: pd.DataFrame, config: dict, reported: dict) -> list[dict]:
    """Per (data set, model): the paper-layout rows, the faithful-vs-corrected rows and the exclusions."""
    layout = reported.get("grounding") or {}
    columns = layout.get("columns", [])
    methods = {label: (spec.get("method", label), {k: v for k, v in spec.items() if k != "method"})
               for label, spec in (config.get("grounding", {}).get("methods") or {}).items()}
    # which configured label (if any) runs each published column's setting
    column_label = {}
    for column in columns:
        for label, (name, params) in methods.items():
            if runs_column(name, params, column):
                column_label[column["title"]] = label
                break
    blocks = []
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=False):
        comparable = setting_matches(config, dataset, model, layout.get("applies_to", {}))
        # a partial run (max_entries) is never compared with the published numbers, whatever its setting
        partial = coverage_text(block) or _short_split(block, config, dataset, layout)
        why_not = f"partial run: {partial}" if partial else "different data / model"
        if comparable and partial is None and config.get("models", {}).get(model, {}).get("checkpoint"):
            # a local file under the published tag's name: nothing says it holds the published weights
            comparable, why_not = False, "a local checkpoint, not the published weights"
        labels_here = list(dict.fromkeys(block["method"]))
        extra = [label for label in labels_here if label not in column_label.values()]
        faithful = block[block["mode"] == "faithful"].set_index(["method", "direction"])
        def missing(label, direction):
            """Why a cell has no number: the method maps no text (no image->text scores), or it did not run."""
            name = methods.get(label, (label, {}))[0]
            return "no text map" if direction == "i2t" and not METHOD_MAPS_TEXT.get(name, True) else "not run"

        paper_rows = []
        for direction in ("t2i", "i2t"):
            cells = []
            for column in columns:
                label = column_label.get(column["title"])
                found = label is not None and (label, direction) in faithful.index
                reproduced = _ci(faithful.loc[(label, direction)]) if found else None
                cells.append({"title": column["title"], "label": label, "reproduced": reproduced,
                              "missing": missing(label, direction),
                              **compare(reported, column[direction], reproduced["mean"] if found else None,
                                        comparable and partial is None, why_not)})
            for label in extra:
                found = (label, direction) in faithful.index
                cells.append({"title": label, "label": label, "entry": None, "difference": None,
                              "why": "no published counterpart", "missing": missing(label, direction),
                              "reproduced": _ci(faithful.loc[(label, direction)]) if found else None})
            paper_rows.append({"direction": direction, "cells": cells})
        protocol_rows = []
        indexed = block.set_index(["method", "direction", "mode"])
        for label in labels_here:
            for direction in ("t2i", "i2t"):
                row = {"method": label, "direction": direction}
                for mode in ("faithful", "corrected"):
                    key = (label, direction, mode)
                    row[mode] = ({m: _ci(indexed.loc[key], m) for m in ("macro", "fg")} if key in indexed.index
                                 else None)
                if row["faithful"] and row["corrected"]:
                    row["delta_macro"] = row["corrected"]["macro"]["mean"] - row["faithful"]["macro"]["mean"]
                    row["delta_fg"] = row["corrected"]["fg"]["mean"] - row["faithful"]["fg"]["mean"]
                    row["differs"] = (abs(row["delta_macro"]) > 0 or abs(row["delta_fg"]) > 0
                                      or row["faithful"]["macro"]["n"] != row["corrected"]["macro"]["n"])
                else:
                    row["delta_macro"] = row["delta_fg"] = None
                    row["differs"] = False
                if row["faithful"] or row["corrected"]:
                    protocol_rows.append(row)
        mine = exclusions[(exclusions["dataset"] == dataset) & (exclusions["model"] == model)]
        blocks.append({
            "dataset": dataset, "model": model, "comparable": comparable, "partial": partial,
            "columns": [c["title"] for c in columns] + extra, "column_labels": column_label,
            "paper_rows": paper_rows, "protocol_rows": protocol_rows,
            "exclusions": mine.to_dict("records"),
        })
    return blocks


def grounding_comparisons(blocks: list[dict]) -> list[dict]:
    """The paper-layout cells that have a published value, as rows of the at-a-glance table."""
    rows = []
    for block in blocks:
        for paper_row in block["paper_rows"]:
            for cell in paper_row["cells"]:
                if cell["entry"] is not None:
                    rows.append({"what": f"{cell['title']}, {paper_row['direction'].upper()}",
                                 "where": f"{block['dataset']} / {block['model']} (faithful)",
                                 "reproduced": cell["reproduced"], **cell})
    return rows


# --------------------------------------------------------------------------------------------- generic tables


def row_coverage(record: dict) -> str | None:
    """``"N of M entries"`` of a row whose ``complete`` is false (M from ``n_split_images`` where the table has it);
    None for a complete row or a table without ``complete``."""
    complete = record.get("complete")
    if complete is None or str(complete).strip().lower() in ("true", "1", "1.0"):
        return None
    n, m = record.get("n_images"), record.get("n_split_images")
    if n is None and record.get("n_entries") is not None and record.get("n_dataset_entries") is not None:
        in_scope = int(record["n_entries"]) + int(record.get("n_excluded") or 0)
        return f"{in_scope} of {int(record['n_dataset_entries'])} entries"
    if n is None:
        return "not every entry of the split"
    return f"{int(n)} of {int(m)} entries" if m is not None else f"{int(n)} entries, not the whole split"


def generic_view(frame: pd.DataFrame, reported: dict) -> dict:
    """Every column of a table; with a ``reported`` column, the published value and the difference per row (none for
    a partial row: ``complete`` false)."""
    has_reported = "reported" in frame.columns and "value" in frame.columns
    columns = [c for c in frame.columns if c != "reported"]
    rows = []
    partial = sorted({text for text in map(row_coverage, frame.to_dict("records")) if text})
    for record in frame.head(MAX_GENERIC_ROWS).to_dict("records"):
        row = {"cells": [record[c] for c in columns]}
        key = record.get("reported") if has_reported else None
        if isinstance(key, str) and key:
            value = record["value"]
            coverage = row_coverage(record)
            row["comparison"] = compare(reported, key, float(value) if value == value else None, coverage is None,
                                        f"partial run: {coverage}")
            row["reproduced"] = {"mean": value, "lo": record.get("lo"), "hi": record.get("hi")}
        rows.append(row)
    return {"columns": columns, "rows": rows, "has_reported": has_reported, "n_rows": len(frame),
            "partial": ", ".join(partial) or None,
            "truncated": len(frame) > MAX_GENERIC_ROWS}
