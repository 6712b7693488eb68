"""Helpers of the table verbs and the report: reading result CSVs, Markdown rendering, ids, a table's coverage.

These were defined in one table verb and imported by others; a verb imports library code, never another verb.
"""

from __future__ import annotations

import pandas as pd


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
