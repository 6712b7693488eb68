"""The CLIP-grounding table (clipxai table-grounding) built from the score-grounding results, and the columns those
results have: score-grounding writes them, table-grounding reads them (named once, here).

:func:`grounding_table` (one row per data set x model x method x direction x mode, with ``complete``),
:func:`exclusion_counts` (entries excluded, by reason) and :func:`to_markdown` (the paper's layout, one block per
data set, model, mode and metric, then faithful beside corrected).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clipxai.artifacts.tables import coverage_text, markdown_table
from clipxai.errors import InputError

# score-grounding's per-entry CSV and summary CSV (docs/contracts.md)
ENTRY_COLUMNS = ["entry_id", "direction", "mode", "macro_iou", "fg_iou", "excluded_reason"]
SUMMARY_COLUMNS = ["direction", "mode", "n_entries", "n_excluded", "macro_mean", "macro_lo", "macro_hi",
                   "fg_mean", "fg_lo", "fg_hi", "n_dataset_entries"]
# what the exclusion counts need of a per-entry CSV
EXCLUSION_COLUMNS = ["entry_id", "direction", "mode", "excluded_reason"]

DIRECTION_LABEL = {"t2i": "Text -> image", "i2t": "Image -> text"}
# What each exclusion reason of `clipxai score-grounding` means (its docstring is the source).
EXCLUSION_MEANING = {
    "no_map": "the maps hold no row for the entry",
    "non_finite_map": "the map has NaN/inf where a score is needed",
    "over_70_words": "faithful: the joined utterances have more than 70 words (the original skipped them)",
    "raised:context_length": "faithful: more tokens than the context (the original's tokenizer raised)",
    "raised:empty_phrase": "faithful: empty phrase (the original's span lookup raised)",
    "raised:token_not_found": "faithful: a phrase token not found in the caption (the original raised)",
    "caption_exceeds_context": "corrected: the caption has more tokens than the model's context",
    "char_span_missing": "corrected: the phrase is not located in the caption",
    "span_not_on_token_boundary": "corrected: the phrase does not start and end on token boundaries",
    "empty_phrase": "corrected: the phrase has no tokens",
    "empty_mask_at_input_size": "corrected: the phrase's mask has no pixel left at the model's input size",
}


def _path_keys(path: Path, suffix: str) -> tuple[str, str, str]:
    """(data set, model, method) of results/<dataset>/<model>/scores/grounding/<method><suffix>."""
    parts = path.parts
    if len(parts) < 5 or parts[-2] != "grounding" or parts[-3] != "scores" or not path.name.endswith(suffix):
        raise InputError(path, "(path)", f"results/<dataset>/<model>/scores/grounding/<method>{suffix}")
    return parts[-5], parts[-4], path.name[: -len(suffix)]


def _read(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"excluded_reason": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, "(file)", f"a {what} CSV ({err})") from None


def read_summary(path: Path) -> pd.DataFrame:
    """Read one summary; data set, model and method come from its path (declared once in clipxai.workflow.paths)."""
    frame = _read(path, "score-grounding summary")
    missing = [c for c in SUMMARY_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(path, missing[0], "a column of the score-grounding summary")
    dataset, model, method = _path_keys(path, "_summary.csv")
    frame.insert(0, "method", method)
    frame.insert(0, "model", model)
    frame.insert(0, "dataset", dataset)
    return frame


def with_coverage(table: pd.DataFrame) -> pd.DataFrame:
    """The table with ``complete``: the entries in scope (scored + excluded) are all the split's entries."""
    in_scope = table["n_entries"] + table["n_excluded"]
    return table.assign(complete=(in_scope >= table["n_dataset_entries"]).astype(bool))


def exclusion_counts(paths: list[Path]) -> pd.DataFrame:
    """Entries excluded per (data set, model, method, direction, mode, reason), with the reason's meaning."""
    rows = []
    for path in paths:
        frame = _read(path, "score-grounding per-entry")
        missing = [c for c in EXCLUSION_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(path, missing[0], "a column of the score-grounding per-entry CSV")
        dataset, model, method = _path_keys(path, ".csv")
        excluded = frame[frame["excluded_reason"].fillna("") != ""]
        for (direction, mode, reason), count in excluded.groupby(["direction", "mode",
             "excluded_reason"]).size().items():
            rows.append({"dataset": dataset, "model": model, "method": method, "direction": direction, "mode": mode,
                         "reason": reason, "count": int(count),
                         "meaning": EXCLUSION_MEANING.get(reason, "(see clipxai score-grounding)")})
    columns = ["dataset", "model", "method", "direction", "mode", "reason", "count", "meaning"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(columns[:6], kind="stable").reset_index(drop=True)


# Seed 001's gradcam-vit is Chefer et al.'s relevance on the last block (R = I + cam, whose CLS row is cam) with the
# cosine as objective where Chefer's is logit_scale * cosine: tested in tests/test_attribution.py.
SAME_METHOD_NOTE = ("gradcam-vit (seed 001) and chefer2021 with start_layer -1 are one method: their maps differ by "
                    "the positive factor logit_scale only, which the min-max normalisation removes, so their columns "
                    "agree up to rounding.")


SIDE_BY_SIDE_COLUMNS = ["method", "direction", "macro faithful", "macro corrected", "delta", "fg faithful",
                        "fg corrected", "delta"]


def modes_side_by_side(table: pd.DataFrame) -> list[str]:
    """Markdown lines: per (data set, model), each method and direction's macro and fg IoU, faithful beside
    corrected, with their difference."""
    lines = []
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=True):
        indexed = block.set_index(["method", "direction", "mode"])
        rows = []
        for method in dict.fromkeys(block["method"]):
            for direction in ("t2i", "i2t"):
                keys = [(method, direction, mode) for mode in ("faithful", "corrected")]
                if not all(key in indexed.index for key in keys):
                    continue
                faithful, corrected = (indexed.loc[key] for key in keys)
                cells = []
                for metric in ("macro", "fg"):
                    low, high = faithful[f"{metric}_mean"], corrected[f"{metric}_mean"]
                    cells += [f"{low:.4f}", f"{high:.4f}", f"{high - low:+.4f}"]
                rows.append([method, DIRECTION_LABEL[direction], *cells])
        lines += [f"## {dataset} / {model} / faithful vs corrected", "",
                  *markdown_table(pd.DataFrame(rows, columns=SIDE_BY_SIDE_COLUMNS)).splitlines(), ""]
    return lines


def _cell(row, metric: str) -> str:
    return f"{row[f'{metric}_mean']:.4f} [{row[f'{metric}_lo']:.4f}, {row[f'{metric}_hi']:.4f}]"


def to_markdown(table: pd.DataFrame) -> str:
    """The table in the paper's layout (cells: mean [95% CI]; "-" where a method has no row), then
    :func:`modes_side_by_side`."""
    lines = ["# Grounding (docs/protocols.md C)", "",
             "Mean over entries with bootstrap 95% CI. macro = the paper's two-class macro IoU; fg = foreground IoU.",
             "",
             SAME_METHOD_NOTE,
             ""]
    methods = list(dict.fromkeys(table["method"]))
    for (dataset, model, mode), block in table.groupby(["dataset", "model", "mode"], sort=True):
        partial = coverage_text(block)
        for metric in ("macro", "fg"):
            lines += [f"## {dataset} / {model} / {mode} / {metric} IoU", ""]
            if partial:
                lines += [f"Partial run: {partial}; not comparable with the published numbers.", ""]
            cells = []
            for direction in ("t2i", "i2t"):
                rows = block[block["direction"] == direction].set_index("method")
                cells.append([DIRECTION_LABEL[direction],
                              *[_cell(rows.loc[m], metric) if m in rows.index else "-" for m in methods]])
            lines += [*markdown_table(pd.DataFrame(cells, columns=["direction", *methods])).splitlines(), ""]
    return "\n".join(lines + modes_side_by_side(table))


def grounding_table(summaries: list[Path]) -> pd.DataFrame:
    """The summaries, one row per data set x model x method x direction x mode (sorted so), with ``complete``."""
    table = pd.concat([read_summary(p) for p in summaries], ignore_index=True)
    return with_coverage(table.sort_values(["dataset", "model", "method", "direction", "mode"], kind="stable"))
