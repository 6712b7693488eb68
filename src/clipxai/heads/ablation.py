"""Mean-ablation on stored decompositions, and zero-shot accuracy with heads ablated or replaced.

Mean-ablating a component replaces its contribution for every image by its mean over a reference set of images
(the same images in the original, which reports the faithful number; a disjoint split, e.g. Waterbirds' validation
split, in corrected mode). Everything works in chunks of images, so decompositions too large for memory
(memory-mapped shards: ViT-H on ImageNet val is ~100 GB) are fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from clipxai.errors import InputError

CHUNK = 1024


@dataclass
class Ablation:
    """Which components are mean-ablated: heads [L, H] and MLP/embedding terms [L + 1] (index 0: embedding)."""

    heads: np.ndarray  # bool [L, H]
    mlps: np.ndarray  # bool [L + 1]
    replacements: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (layer, head) -> [n, D]

    @classmethod
    def of(cls, layers: int, heads: int, ablate_heads: Iterable[tuple[int, int]] = (),
           ablate_layers: Iterable[int] = (), ablate_mlps: Iterable[int] = ()) -> "Ablation":
        """Ablate the listed (layer, head) pairs, every head of the listed layers, and the listed MLP terms."""
        head_mask = np.zeros((layers, heads), dtype=bool)
        mlp_mask = np.zeros(layers + 1, dtype=bool)
        try:
            for layer, head in ablate_heads:
                head_mask[layer, head] = True
            for layer in ablate_layers:
                head_mask[layer] = True
            for index in ablate_mlps:
                mlp_mask[index] = True
        except IndexError:
            raise InputError("ablation", "components", f"layers < {layers}, heads < {heads}, MLP terms < "
                             f"{layers + 1}") from None
        return cls(head_mask, mlp_mask)


def component_means(attn: np.ndarray, mlp: np.ndarray, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Mean over images of every head [L, H, D] and every MLP/embedding term [L + 1, D] (float64)."""
    attn_sum = np.zeros(attn.shape[1:], dtype=np.float64)
    mlp_sum = np.zeros(mlp.shape[1:], dtype=np.float64)
    for start in range(0, len(attn), chunk):
        attn_sum += np.asarray(attn[start:start + chunk], dtype=np.float64).sum(0)
        mlp_sum += np.asarray(mlp[start:start + chunk], dtype=np.float64).sum(0)
    return attn_sum / len(attn), mlp_sum / len(mlp)


def mean_ablate(attn: np.ndarray, mlp: np.ndarray, ablation: Ablation,
                means: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Copies of ``attn``/``mlp`` with the ablated components set to their means (for small decompositions)."""
    attn_mean, mlp_mean = means if means is not None else component_means(attn, mlp)
    attn_out = np.array(attn, dtype=np.float64)
    mlp_out = np.array(mlp, dtype=np.float64)
    attn_out[:, ablation.heads] = attn_mean[ablation.heads]
    mlp_out[:, ablation.mlps] = mlp_mean[ablation.mlps]
    for (layer, head), values in ablation.replacements.items():
        attn_out[:, layer, head] = values
    return attn_out, mlp_out


def ablated_embeddings(attn: np.ndarray, mlp: np.ndarray, ablation: Ablation | None = None,
                       means: tuple[np.ndarray, np.ndarray] | None = None, chunk: int = CHUNK) -> np.ndarray:
    """Image embeddings [n, D] (sum of all terms; not renormalised) with ``ablation`` applied, chunk by chunk.

    ``means`` are the reference means (``component_means`` of a reference set); default: these images' own.
    Replacements (e.g. TextSpan reconstructions) take precedence over mean-ablation of the same head.
    """
    n, layers, heads, dim = attn.shape
    if mlp.shape != (n, layers + 1, dim):
        raise InputError("decomposition", "mlp", f"[{n}, {layers + 1}, {dim}] to match attn, got {mlp.shape}")
    if ablation is None:
        ablation = Ablation.of(layers, heads)
    keep_heads = ~ablation.heads
    for layer, head in ablation.replacements:
        keep_heads[layer, head] = False
    keep_mlps = ~ablation.mlps
    constant = np.zeros(dim, dtype=np.float64)
    if ablation.heads.any() or ablation.mlps.any():
        attn_mean, mlp_mean = means if means is not None else component_means(attn, mlp, chunk)
        replaced = np.zeros_like(ablation.heads)
        for layer, head in ablation.replacements:
            replaced[layer, head] = True
        constant += attn_mean[ablation.heads & ~replaced].sum(0) + mlp_mean[ablation.mlps].sum(0)
    out = np.empty((n, dim), dtype=np.float64)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = np.asarray(attn[start:stop], dtype=np.float64)
        total = block[:, keep_heads].sum(1) + np.asarray(mlp[start:stop], dtype=np.float64)[:, keep_mlps].sum(1)
        for (layer, head), values in ablation.replacements.items():
            total += np.asarray(values[start:stop], dtype=np.float64)
        out[start:stop] = total + constant
    return out


def accuracy(embeddings: np.ndarray, classifier: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 zero-shot accuracy (fraction) of ``embeddings`` [n, D] under ``classifier`` [D, C]."""
    labels = np.asarray(labels)
    if embeddings.shape[1] != classifier.shape[0]:
        raise InputError("classifier", "shape", f"[{embeddings.shape[1]}, classes], got {classifier.shape}")
    if labels.shape != (len(embeddings),) or labels.min(initial=0) < 0 or labels.max(initial=0) >= classifier.shape[1]:
        raise InputError("labels", "values", f"{len(embeddings)} class indices in [0, {classifier.shape[1]})")
    predictions = (embeddings @ np.asarray(classifier, dtype=np.float64)).argmax(1)
    return float((predictions == labels).mean())


def replaced_accuracy(attn: np.ndarray, mlp: np.ndarray, classifier: np.ndarray, labels: np.ndarray,
                      reconstructions: Mapping[tuple[int, int], np.ndarray], last_layers: int,
                      means: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """The TextSpan completeness check: accuracy with every head of the layers before the last ``last_layers``
    mean-ablated (MLPs kept, as in the original), alone and with the last layers' heads replaced by
    ``reconstructions``. Also the unablated accuracy. Fractions in [0, 1]."""
    layers, heads = attn.shape[1], attn.shape[2]
    early = Ablation.of(layers, heads, ablate_layers=range(layers - last_layers))
    replaced = Ablation.of(layers, heads, ablate_layers=range(layers - last_layers))
    replaced.replacements = dict(reconstructions)
    return {
        "baseline_accuracy": accuracy(ablated_embeddings(attn, mlp), classifier, labels),
        "mean_ablated_accuracy": accuracy(ablated_embeddings(attn, mlp, early, means), classifier, labels),
        "reconstructed_accuracy": accuracy(ablated_embeddings(attn, mlp, replaced, means), classifier, labels),
    }
