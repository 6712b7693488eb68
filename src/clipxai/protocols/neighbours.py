"""``clipxai figure-neighbours``'s protocol: query images and their nearest neighbours in one attention head's
output space (TextSpan paper: a head that writes "colour" or "texture" retrieves images alike in that property only).

The head is named (``L.H``) or chosen from the TextSpan table (``auto``: the head whose texts explain the largest
share of its variance). Similarity is cosine between the head's centred contributions, in the whole space or in its
top principal directions (clipxai.heads.principal.nearest_neighbours). Queries are drawn with a seeded generator,
one per class where there are enough classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from clipxai.errors import InputError


@dataclass
class Neighbours:
    """One head's neighbours: ``neighbours``/``similarity`` [queries, k] are rows of ``ids``/``labels``."""

    layer: int
    head: int
    ids: list[str]
    labels: np.ndarray
    queries: list[int]
    neighbours: np.ndarray
    similarity: np.ndarray


def choose_head(heads: pd.DataFrame, wanted: str) -> tuple[int, int]:
    """(layer, head): the one asked for, or the head whose texts explain the largest share of its variance."""
    if wanted != "auto":
        try:
            layer, head = (int(x) for x in wanted.split("."))
        except ValueError:
            raise InputError("--head", "value", f"'auto' or LAYER.HEAD, got {wanted!r}") from None
        return layer, head
    shares = heads.groupby(["layer", "head"], sort=True)["variance_explained"].sum()
    layer, head = shares.idxmax()  # first maximum in (layer, head) order: deterministic
    return int(layer), int(head)


def pick_queries(labels: np.ndarray, n: int, seed: int) -> list[int]:
    """``n`` rows drawn with a seeded generator, from distinct classes while there are unused ones."""
    from clipxai.seeding import rng

    order = rng(seed, "neighbour-queries").permutation(len(labels))
    chosen, seen = [], set()
    for index in order:  # first pass: one per class
        if len(chosen) < n and int(labels[index]) not in seen:
            chosen.append(int(index))
            seen.add(int(labels[index]))
    for index in order:  # then fill up
        if len(chosen) < n and int(index) not in chosen:
            chosen.append(int(index))
    return chosen


def head_neighbours(decomposition: Sequence[str], heads: pd.DataFrame, wanted: str, components: int, queries: int,
                    k: int, seed: int) -> Neighbours:
    """The chosen head's queries and their ``k`` nearest neighbours over the decomposition shards' images."""
    from clipxai.heads.principal import nearest_neighbours
    from clipxai.heads.textspan import right_singular
    from clipxai.models.decompose import load_decomposition

    layer, head = choose_head(heads, wanted)
    parts = [load_decomposition(path) for path in decomposition]
    n_layers, n_heads = parts[0]["attn"].shape[1:3]
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
        raise InputError("--head", "value", f"a head of the model ({n_layers} layers x {n_heads} heads), got "
                         f"{layer}.{head}")
    outputs = np.concatenate([np.asarray(p["attn"][:, layer, head], dtype=np.float64) for p in parts])
    ids = [str(i) for p in parts for i in np.asarray(p["ids"]).tolist()]
    labels = np.concatenate([np.asarray(p["labels"]) for p in parts])
    directions = None
    if components:
        directions = right_singular(outputs - outputs.mean(0))[1][:components]
    chosen = pick_queries(labels, min(queries, len(ids)), seed)
    neighbours, similarity = nearest_neighbours(outputs, chosen, k, directions)
    return Neighbours(layer, head, ids, labels, chosen, neighbours, similarity)


def head_description(heads: pd.DataFrame, layer: int, head: int, n: int = 3) -> str:
    """The head's first ``n`` TextSpan texts, joined."""
    texts = heads[(heads["layer"] == layer) & (heads["head"] == head)].sort_values("rank")["text"].astype(str)
    return "; ".join(texts.head(n)) or "(no texts)"
