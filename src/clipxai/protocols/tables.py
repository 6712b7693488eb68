"""Small helpers the heads tables share: Markdown rendering and (data set, model) keys read from result paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipxai.errors import InputError


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table of ``frame``: floats with ``digits`` decimals, NaN as an empty cell, pipes escaped."""

    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


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
