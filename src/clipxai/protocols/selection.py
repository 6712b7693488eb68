"""Choose attention heads by what their TextSpan texts say: the heads whose texts name places or backgrounds.

The TextSpan paper removes Waterbirds' spurious cue by mean-ablating the heads whose descriptions are about
location / background. Here the choice is a rule over the heads table, not a list: a head is chosen when at least
``min_texts`` of its texts contain one of the configured words (whole words, case-insensitive); heads are ranked by
the share of their variance the matching texts explain, and at most ``max_heads`` are kept (0: no limit).
"""

from __future__ import annotations

import re
from typing import Sequence

import pandas as pd

from clipxai.errors import InputError

COLUMNS = ["layer", "head", "n_texts", "n_matching", "matching_share", "matched_texts", "matched_words",
           "selected"]
HEADS_COLUMNS = ("layer", "head", "rank", "text", "variance_explained")


def matched_words(text: str, words: set[str]) -> list[str]:
    """The configured words that occur in ``text`` as whole words, in text order."""
    return [token for token in re.findall(r"[a-z]+", text.lower()) if token in words]


def select_heads(heads: pd.DataFrame, words: Sequence[str], min_texts: int = 1, max_heads: int = 0) -> pd.DataFrame:
    """One row per head of a TextSpan heads table (``clipxai explain-heads`` CSV), with the texts that matched and
    whether the head is selected; ordered layer, head."""
    missing = [c for c in HEADS_COLUMNS if c not in heads.columns]
    if missing:
        raise InputError("heads table", missing[0], "a column of the explain-heads CSV")
    vocabulary = {w.strip().lower() for w in words if w.strip()}
    if not vocabulary:
        raise InputError("words", "(list)", "at least one word to match")
    if min_texts < 1 or max_heads < 0:
        raise InputError("selection", "min_texts/max_heads", f"min_texts >= 1 and max_heads >= 0, got {min_texts}, "
                         f"{max_heads}")
    rows = []
    for (layer, head), texts in heads.sort_values(["layer", "head", "rank"]).groupby(["layer", "head"], sort=True):
        hits = [(text, share, matched_words(str(text), vocabulary))
                for text, share in zip(texts["text"], texts["variance_explained"])]
        hits = [(text, share, found) for text, share, found in hits if found]
        rows.append({"layer": int(layer), "head": int(head), "n_texts": len(texts), "n_matching": len(hits),
                     "matching_share": float(sum(share for _, share, _ in hits)),
                     "matched_texts": "; ".join(text for text, _, _ in hits),
                     "matched_words": " ".join(sorted({w for _, _, found in hits for w in found})),
                     "selected": False})
    table = pd.DataFrame(rows, columns=COLUMNS)
    eligible = table[table["n_matching"] >= min_texts]
    ranked = eligible.sort_values(["matching_share", "layer", "head"], ascending=[False, True, True], kind="stable")
    chosen = ranked.index if not max_heads else ranked.index[:max_heads]
    table.loc[chosen, "selected"] = True
    return table


def selected_pairs(selection: pd.DataFrame) -> list[tuple[int, int]]:
    """(layer, head) of the selected rows, in layer, head order."""
    chosen = selection[selection["selected"].astype(bool)]
    return [(int(layer), int(head)) for layer, head in zip(chosen["layer"], chosen["head"])]
