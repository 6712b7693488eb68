"""Principal components of a head, named by texts (seed 004, "Explaining CLIP's visual encoder heads using text
embeddings on principal components").

Per head: centre the head outputs over images and the text pool (each by its own mean: the modality gap), SVD of
the centred outputs, keep the leading components up to the rank where the cumulative sum reaches 99% of the total
-- of the singular values (faithful: what the original code summed) or of their squares (corrected: that is the
variance). Each kept component is described by the k texts with the largest and the k with the smallest
coordinate along it; the head is reconstructed from the top text of every component (least squares onto their
span inside the kept principal subspace).

Each component's share (the ``variance_explained`` column of the tables), by mode:

- faithful: ``s_i / sum of the kept s_j`` -- the original's relative strength (``100 * s_i / sum(s)`` after ``s``
  was truncated to the rank), so the kept shares always add up to 1 whatever the rank leaves out;
- corrected: ``s_i^2 / sum of all s_j^2`` -- the fraction of the head's variance over the images that the
  component explains (variance is the squared singular values, and its total is the head's, not the kept part's),
  so the shares add up to the variance the kept components explain, below 1 when anything is truncated.

A component's sign is arbitrary (SVD); here it is fixed so that its largest-magnitude entry is positive, so tables
are reproducible. "Top" and "bottom" swap with the sign; both are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from tqdm import tqdm

from clipxai.errors import InputError
from clipxai.heads.textspan import last_heads, right_singular

MODES = ("faithful", "corrected")


@dataclass
class HeadComponents:
    """The principal components of one head and the texts that name them."""

    layer: int
    head: int
    rank: int  # components kept
    strengths: np.ndarray  # [rank] singular values
    shares: np.ndarray  # [rank] s_i / sum of the kept s (faithful) or s_i^2 / sum of all s^2 (corrected)
    components: np.ndarray  # [rank, D] unit directions (right singular vectors)
    top: np.ndarray  # [rank, k] text indices with the largest coordinate along each component
    bottom: np.ndarray  # [rank, k] ... the smallest
    top_scores: np.ndarray  # [rank, k] their coordinates (centred text projected onto the component)
    bottom_scores: np.ndarray  # [rank, k]
    reconstruction: np.ndarray  # [n_images, D]
    texts: Sequence[str]

    def rows(self) -> list[dict]:
        """Table rows: per component, its top k then bottom k texts."""
        rows = []
        for component in range(self.rank):
            for side, indices, scores in (("top", self.top, self.top_scores),
                                          ("bottom", self.bottom, self.bottom_scores)):
                for position, (index, score) in enumerate(zip(indices[component], scores[component])):
                    rows.append({"layer": self.layer, "head": self.head, "rank": component,
                                 "text": self.texts[index], "variance_explained": float(self.shares[component]),
                                 "side": side, "position": position, "score": float(score)})
        return rows


def kept_rank(singular_values: np.ndarray, mode: str = "faithful", threshold: float = 0.99) -> int:
    """Components needed for the cumulative sum to reach ``threshold`` of the total (at least one)."""
    if mode not in MODES:
        raise InputError("--mode", "mode", f"one of {', '.join(MODES)}, got {mode!r}")
    mass = singular_values if mode == "faithful" else singular_values ** 2
    total = mass.sum()
    if total <= 0:
        return 1
    cumulative = np.cumsum(mass) / total
    return min(int(np.sum(cumulative < threshold)) + 1, len(singular_values))


def principal(outputs: np.ndarray, text_embeddings: np.ndarray, k: int, mode: str = "faithful",
              threshold: float = 0.99, rank: int | None = None) -> dict:
    """Principal components of one head's outputs [n, D], named by ``text_embeddings`` [T, D].

    ``rank`` overrides the threshold rule. Returns a dict with the fields of :class:`HeadComponents` but
    layer/head/texts.
    """
    data = np.asarray(outputs, dtype=np.float64)
    pool = np.asarray(text_embeddings, dtype=np.float64)
    mean = data.mean(0, keepdims=True)
    data = data - mean
    pool = pool - pool.mean(0, keepdims=True)
    s, vh = right_singular(data)
    biggest = np.abs(vh).argmax(axis=1)
    vh = vh * np.sign(vh[np.arange(len(vh)), biggest])[:, None]
    keep = kept_rank(s, mode, threshold) if rank is None else max(1, min(int(rank), len(s)))
    # faithful: over the kept singular values (the original truncated s first); corrected: of the total variance
    kept_mass, total = (s[:keep], s[:keep].sum()) if mode == "faithful" else (s[:keep] ** 2, (s ** 2).sum())
    shares = kept_mass / total if total > 0 else np.zeros(keep)
    components = vh[:keep]
    coordinates = pool @ components.T  # [T, rank]
    k = min(k, len(pool))
    order = np.argsort(-coordinates, axis=0, kind="stable")  # descending; ties by text order
    top = order[:k].T
    bottom = np.argsort(coordinates, axis=0, kind="stable")[:k].T
    columns = np.arange(keep)[:, None]
    # Reconstruct inside the principal subspace: least squares onto the span of each component's top text.
    chosen = coordinates[top[:, 0]]  # [rank, rank]: the top texts' coordinates
    onto_texts = chosen.T @ np.linalg.pinv(chosen @ chosen.T) @ chosen
    reconstruction = data @ components.T @ onto_texts @ components + mean
    return {"rank": keep, "strengths": s[:keep], "shares": shares, "components": components, "top": top,
            "bottom": bottom, "top_scores": coordinates.T[columns, top],
            "bottom_scores": coordinates.T[columns, bottom], "reconstruction": reconstruction}


def explain_heads(attn: np.ndarray, text_embeddings: np.ndarray, texts: Sequence[str], last_layers: int, k: int,
                  mode: str = "faithful", threshold: float = 0.99) -> list[HeadComponents]:
    """The principal variant for every head of the last ``last_layers`` layers of ``attn`` [n, L, H, D]."""
    results = []
    pairs = last_heads(attn, text_embeddings, texts, last_layers)
    for layer, head in tqdm(pairs, desc="principal components", unit="head"):
        fields = principal(attn[:, layer, head], text_embeddings, k, mode, threshold)
        results.append(HeadComponents(layer=layer, head=head, texts=texts, **fields))
    return results


def nearest_neighbours(head_outputs: np.ndarray, queries: np.ndarray | Sequence[int], k: int,
                       components: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images whose contribution from one head is most similar to the queries', in that head's subspace.

    ``head_outputs`` [n, D] one head's terms over a set of images (centred by their mean here); ``queries`` row
    indices into them (a query is then never its own neighbour) or vectors [q, D]; ``components`` [r, D]
    orthonormal directions to compare in (e.g. the head's principal components or TextSpan directions), default
    the whole space. Cosine similarity; returns (indices [q, k], similarities [q, k]), most similar first.
    """
    data = np.asarray(head_outputs, dtype=np.float64)
    mean = data.mean(0, keepdims=True)
    by_index = np.asarray(queries).ndim == 1
    query = data[np.asarray(queries)] if by_index else np.asarray(queries, dtype=np.float64)
    data, query = data - mean, query - mean
    if components is not None:
        data, query = data @ components.T, query @ components.T
    data = data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)
    query = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    similarity = query @ data.T  # [q, n]
    if by_index:
        similarity[np.arange(len(query)), np.asarray(queries)] = -np.inf
    k = min(k, similarity.shape[1] - (1 if by_index else 0))
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(similarity, order, axis=1)
