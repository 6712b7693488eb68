"""Zero-shot classification metrics: top-k accuracy, and per-group / worst-group accuracy (Waterbirds)."""

from __future__ import annotations

import numpy as np


def topk_correct(logits, labels, k: int) -> np.ndarray:
    """bool [N]: is the label among the ``k`` highest logits? Ties broken towards the lower class index."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != labels.size:
        raise ValueError(f"expected logits [N, C] and labels [N], got {logits.shape} and {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels outside [0, {logits.shape[1]})")
    k = min(k, logits.shape[1])
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return np.any(top == labels[:, None], axis=1)


def zero_shot_accuracy(logits, labels, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """``{"top1": ..., "top5": ...}``: fraction of rows whose label is among the k highest logits."""
    return {f"top{k}": float(np.mean(topk_correct(logits, labels, k))) for k in ks}


def group_accuracy(correct, y, place) -> dict:
    """Accuracy per (y, place) group and the worst group's (min over the groups present).

    ``correct``: bool [N] (prediction == y); ``y``, ``place``: int [N]. Returns ``{"groups": {(y, place):
    {"n": count, "accuracy": acc}}, "worst_group": min accuracy, "worst": (y, place), "mean": overall accuracy,
    "group_mean": unweighted mean over groups}``.
    """
    correct = np.asarray(correct).reshape(-1).astype(bool)
    y = np.asarray(y).reshape(-1)
    place = np.asarray(place).reshape(-1)
    if not (correct.size == y.size == place.size):
        raise ValueError("correct, y and place must have the same length")
    if correct.size == 0:
        raise ValueError("no examples")
    groups = {}
    for key in sorted(set(zip(y.tolist(), place.tolist()))):
        members = (y == key[0]) & (place == key[1])
        groups[key] = {"n": int(members.sum()), "accuracy": float(correct[members].mean())}
    worst = min(groups, key=lambda g: (groups[g]["accuracy"], g))
    return {
        "groups": groups,
        "worst_group": groups[worst]["accuracy"],
        "worst": worst,
        "mean": float(correct.mean()),
        "group_mean": float(np.mean([g["accuracy"] for g in groups.values()])),
    }


def worst_group_accuracy(logits, y, place) -> dict:
    """Zero-shot predictions ``argmax(logits)`` scored per (y, place) group: see :func:`group_accuracy`."""
    logits = np.asarray(logits)
    y = np.asarray(y).reshape(-1)
    predicted = np.argmax(logits, axis=1)
    return group_accuracy(predicted == y, y, place)
