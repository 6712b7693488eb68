"""Helpers of the table verbs and the report: reading result CSVs, Markdown rendering, ids, a table's coverage.

These were defined in one table verb and imported by others; a verb imports library code, never another verb.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipxai.errors import InputError

# The columns of result CSVs that one verb writes and another reads (writer and reader name them once, here).
# explain-heads: one row per (head, rank) text of a head's description.
HEAD_TEXT_COLUMNS = ["layer", "head", "rank", "text", "variance_explained", "side", "position", "score"]
# score-segmentation: one row per (method, mode), read by table-imagenet-seg.
SEGMENTATION_SCORE_COLUMNS = ["method", "mode", "n_images", "pixel_accuracy", "miou", "iou_background",
                              "iou_foreground", "map", "top1", "registry_method", "params"]


def coverage_text(rows: pd.DataFrame) -> str | None:
    """``"N of M entries"`` for rows of one (data set, model) of which some are partial; None when all complete.

    The rows are the grounding table's (clipxai table-grounding): ``complete``, ``n_entries``, ``n_excluded`` and
    ``n_dataset_entries`` per row; the report reads the same table to say why no difference is computed.
    """
    if bool(rows["complete"].all()):
        return None
    pairs = sorted({(int(n + x), int(m)) for n, x, m in
                    zip(rows["n_entries"], rows["n_excluded"], rows["n_dataset_entries"])})
    return ", ".join(f"{n} of {m} entries" for n, m in pairs)


def read_result_csv(path, required, readable: str, column: str, **read_options) -> pd.DataFrame:
    """One result CSV (``pd.read_csv(path, **read_options)``); InputError names the file when it is unreadable
    (``readable``: what it should be) or the first ``required`` column it lacks (``column``: what that column is)."""
    try:
        frame = pd.read_csv(path, **read_options)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, "(file)", f"{readable} ({err})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(path, missing[0], column)
    return frame


def read_csvs(paths: list[str], required: list[str], what: str) -> pd.DataFrame:
    """The CSVs at ``paths`` concatenated; InputError names the file that is unreadable or lacks a ``required``
    column (``what``: the verb that writes them)."""
    frames = [read_result_csv(path, required, "a readable CSV", f"a column written by {what}") for path in paths]
    return pd.concat(frames, ignore_index=True)


def parse_ids(pairs: list[str], flag: str, reported: str | None) -> dict[tuple[str, str], str]:
    """``DATASET:MODEL=ID`` arguments -> {(dataset, model): id}, each id checked against reported.yaml."""
    known = None
    if reported is not None:
        import yaml

        try:
            with open(reported) as fh:
                known = set((yaml.safe_load(fh) or {}).get("published") or {})
        except (OSError, yaml.YAMLError) as err:
            raise InputError(reported, "(file)", f"a readable YAML file ({err})") from None
    ids = {}
    for pair in pairs:
        run, sep, key = pair.partition("=")
        dataset, colon, model = run.partition(":")
        if not (sep and colon and dataset and model and key):
            raise InputError(flag, "value", f"DATASET:MODEL=ID, got {pair!r}")
        if known is not None and key not in known:
            raise InputError(reported, f"published.{key}", f"an entry for {flag} {pair}")
        ids[(dataset, model)] = key
    return ids


def markdown_table(frame: pd.DataFrame, digits: int = 1, *, escape_pipes: bool = False) -> str:
    """A GitHub-style Markdown table; floats with ``digits`` decimals, NaN and None as an empty cell.

    ``escape_pipes``: a "|" inside a cell written as "\\|" (cells of free text, e.g. the head tables' texts); off,
    cells are written as they are (the zero-shot table's templates, joined by " | ", read as they were).
    """

    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|") if escape_pipes else str(value)

    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in values) + " |" for values in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"
