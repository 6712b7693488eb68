"""TextSpan (Gandelsman et al. 2024): name the directions an attention head writes with texts from a pool.

Per head, over a set of images' CLS-row head outputs [n_images, D]: the texts' embeddings are projected onto the
span of the head outputs' top right singular vectors (default 80: the rank of W_OV the original assumed); the
outputs are centred; then m times the text whose projection of the outputs varies most over the images is chosen,
its rank-one part is added to the reconstruction, and both the outputs and the remaining texts are deflated by it.
As in the original: the singular vectors are those of the *uncentred* outputs, the texts are not centred, and the
choice maximises the standard deviation of ``outputs @ text`` (the deflated text's norm is not divided out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from tqdm import tqdm

from clipxai.errors import InputError


@dataclass
class HeadTexts:
    """The texts chosen for one head and what they reconstruct."""

    layer: int
    head: int
    text_indices: list[int]  # into the text pool, in the order chosen
    texts: list[str]
    variance_explained: np.ndarray  # [m] share of the head outputs' total variance each chosen text's part carries
    scores: np.ndarray  # [m] the standard deviation over images that won each step
    reconstruction: np.ndarray  # [n_images, D] mean + the chosen rank-one parts

    def rows(self) -> list[dict]:
        """One table row per chosen text (the heads CSV)."""
        return [{"layer": self.layer, "head": self.head, "rank": rank, "text": text,
                 "variance_explained": float(share), "side": "top", "position": 0, "score": float(score)}
                for rank, (text, share, score) in enumerate(zip(self.texts, self.variance_explained, self.scores))]


def check_pool(outputs: np.ndarray, text_embeddings: np.ndarray, texts: Sequence[str]) -> None:
    if outputs.ndim != 2 or text_embeddings.ndim != 2 or outputs.shape[1] != text_embeddings.shape[1]:
        raise InputError("text_embeddings", "shape", f"head outputs [n, D] and text embeddings [T, D] with the same "
                         f"D, got {outputs.shape} and {text_embeddings.shape}")
    if len(texts) != text_embeddings.shape[0]:
        raise InputError("texts", "(lines)", f"one text per embedding row ({text_embeddings.shape[0]}), "
                         f"got {len(texts)}")


def last_heads(attn: np.ndarray, text_embeddings: np.ndarray, texts: Sequence[str],
               last_layers: int) -> list[tuple[int, int]]:
    """The (layer, head) pairs of the last ``last_layers`` layers of ``attn`` [n, L, H, D], in order, once ``K`` and
    the text pool are checked against it."""
    n_layers, n_heads = attn.shape[1], attn.shape[2]
    if not 1 <= last_layers <= n_layers:
        raise InputError("--layers", "K", f"between 1 and {n_layers} (the model's layers), got {last_layers}")
    check_pool(attn[:1, 0, 0], text_embeddings, texts)
    return [(layer, head) for layer in range(n_layers - last_layers, n_layers) for head in range(n_heads)]


def right_singular(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values (descending) and right singular vectors [k, D] of ``data`` [n, D] (float64).

    For many more rows than columns (ImageNet: 50,000 x 1,024 per head) through the eigen-decomposition of the
    D x D Gram matrix, which is much faster than an SVD of the data; the vectors' signs are arbitrary either way.
    """
    n, dim = data.shape
    if n <= 2 * dim:
        _, s, vh = np.linalg.svd(data, full_matrices=False)
        return s, vh
    eigenvalues, eigenvectors = np.linalg.eigh(data.T @ data)
    order = np.argsort(eigenvalues, kind="stable")[::-1]
    return np.sqrt(np.clip(eigenvalues[order], 0.0, None)), eigenvectors[:, order].T


def textspan(outputs: np.ndarray, text_embeddings: np.ndarray, m: int, rank: int = 80
             ) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """Choose ``m`` texts for one head. Returns (text indices, variance shares, winning scores, reconstruction).

    ``outputs`` [n, D] are one head's contributions over n images, ``text_embeddings`` [T, D] the pool.
    Stops early if no text has any variance left to explain.
    """
    data = np.asarray(outputs, dtype=np.float64)
    pool = np.asarray(text_embeddings, dtype=np.float64)
    basis = right_singular(data)[1][:rank]  # orthonormal rows: projecting onto their span is basis.T @ basis
    pool = pool @ basis.T @ basis
    mean = data.mean(0, keepdims=True)
    data = data - mean
    total = float((data ** 2).sum() / len(data))  # total variance, summed over dimensions
    reconstruction = np.repeat(mean, len(data), axis=0)
    # The variance over images of data @ text is text' C text with C the (n-1)-normalised covariance: a D x D
    # matrix kept up to date under deflation, instead of projecting all n images on all T texts every step.
    covariance = data.T @ data / max(len(data) - 1, 1)
    chosen, shares, scores = [], [], []
    for _ in range(m):
        spread = np.sqrt(np.clip(np.einsum("td,td->t", pool @ covariance, pool), 0.0, None))
        best = int(np.argmax(spread))
        direction = pool[best]
        length2 = float(direction @ direction)
        if spread[best] <= 1e-12 * max(total, 1e-300) ** 0.5 or length2 <= 0:
            break
        coefficients = data @ direction / length2
        part = coefficients[:, None] * direction[None, :]
        reconstruction += part
        data = data - part
        pool = pool - (pool @ direction / length2)[:, None] * direction[None, :]
        # C <- (I - P) C (I - P) with P = t t' / |t|^2, the covariance of the deflated data.
        pulled = covariance @ direction / length2
        curvature = float(direction @ pulled) / length2
        covariance = (covariance - np.outer(direction, pulled) - np.outer(pulled, direction)
                      + curvature * np.outer(direction, direction))
        chosen.append(best)
        scores.append(float(spread[best]))
        shares.append(float(coefficients.var() * length2 / total) if total > 0 else 0.0)
    return chosen, np.asarray(shares), np.asarray(scores), reconstruction


def explain_heads(attn: np.ndarray, text_embeddings: np.ndarray, texts: Sequence[str], last_layers: int, m: int,
                  rank: int = 80) -> list[HeadTexts]:
    """TextSpan for every head of the last ``last_layers`` layers of ``attn`` [n_images, L, H, D]."""
    results = []
    for layer, head in tqdm(last_heads(attn, text_embeddings, texts, last_layers), desc="textspan", unit="head"):
        chosen, shares, scores, reconstruction = textspan(attn[:, layer, head], text_embeddings, m, rank)
        results.append(HeadTexts(layer=layer, head=head, text_indices=chosen, texts=[texts[i] for i in chosen],
                                 variance_explained=shares, scores=scores, reconstruction=reconstruction))
    return results
