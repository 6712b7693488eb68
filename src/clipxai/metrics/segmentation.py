"""Segmentation metrics: multi-class confusion mIoU (VOC, seed 002) and the ImageNet-segmentation protocol
(pixel accuracy, two-class mIoU, mAP; PROTOCOLS.md D), each usable at once or accumulated batch by batch.

Multi-class mIoU, faithful (CLIPpy's ``PascalEvaluator``): confusion matrix with rows = label, columns = prediction,
pixels labelled ``ignore_index`` dropped; ``IoU_c = diag / (row + col - diag + eps)`` with eps = float32 machine
epsilon, so a class absent from both prediction and label gets 0 (not NaN) and pulls the ``nanmean`` down.
Corrected: such a class is left out of the mean.

ImageNet segmentation (Chefer et al.'s evaluation, reused by TextSpan): prediction = ``map > mean(map)``; correct and
labelled pixels, and per-class intersection and union of the two classes (background, foreground), are summed over
the data set before dividing (``x / (spacing(1) + total)``); mAP = mean over images of the average precision of the
two-channel score (``1 - map`` for background, ``map`` for foreground) against the one-hot label, flattened together,
NaN -> 0 (``np.nan_to_num``).
"""

from __future__ import annotations

import numpy as np

ABSENT = ("zero", "exclude")
_EPS = float(np.finfo(np.float32).eps)


def _as_int_array(x) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype.kind not in "iub":
        raise ValueError(f"expected integer class indices, got dtype {array.dtype}")
    return array.astype(np.int64)


class ConfusionAccumulator:
    """Confusion matrix of ``num_classes`` classes summed over batches; ``ignore_index`` labels are dropped."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred, label) -> "ConfusionAccumulator":
        """Add a batch: ``pred`` and ``label`` integer arrays of one shape (any number of dimensions)."""
        pred, label = _as_int_array(pred), _as_int_array(label)
        if pred.shape != label.shape:
            raise ValueError(f"pred {pred.shape} and label {label.shape} differ in shape")
        keep = np.ones(label.shape, dtype=bool) if self.ignore_index is None else label != self.ignore_index
        pred, label = pred[keep], label[keep]
        c = self.num_classes
        # out-of-range indices would silently land in another cell of the bincount
        if label.size and (label.min() < 0 or label.max() >= c):
            raise ValueError(f"labels outside [0, {c}) that are not ignore_index={self.ignore_index}")
        if pred.size and (pred.min() < 0 or pred.max() >= c):
            raise ValueError(f"predictions outside [0, {c})")
        self.confusion += np.bincount(label * c + pred, minlength=c * c).reshape(c, c)
        return self

    def result(self, absent: str = "zero") -> dict:
        """``{"miou", "per_class" [C] (NaN for an excluded class), "present" [C] bool, "confusion" [C, C]}``.

        absent="zero" (faithful): a class absent from both prediction and label scores 0 and counts in the mean.
        absent="exclude" (corrected): it is left out of the mean (and is NaN in per_class).
        """
        if absent not in ABSENT:
            raise ValueError(f"absent must be one of {ABSENT}, got {absent!r}")
        conf = self.confusion
        diag = np.diag(conf).astype(np.float64)
        union = conf.sum(axis=0) + conf.sum(axis=1) - diag
        present = union > 0
        per_class = diag / (union + _EPS)
        if absent == "exclude":
            per_class = np.where(present, per_class, np.nan)
            miou = float(np.mean(per_class[present])) if present.any() else float("nan")
        else:
            miou = float(np.mean(per_class))
        return {"miou": miou, "per_class": per_class, "present": present, "confusion": conf.copy()}


def confusion_miou(pred, label, num_classes: int, ignore_index: int | None = 255, absent: str = "zero") -> dict:
    """mIoU of one prediction/label pair (or one stacked batch): see :class:`ConfusionAccumulator`."""
    return ConfusionAccumulator(num_classes, ignore_index).update(pred, label).result(absent=absent)


# ----------------------------------------------------------------------------------- ImageNet segmentation


def average_precision(scores, targets) -> float:
    """Average precision as scikit-learn's ``average_precision_score`` (binary): sum_n (R_n - R_{n-1}) P_n.

    Thresholds at every distinct score, highest first, tied scores entering together; no interpolation. No
    positive target -> 0.0 (the original turned sklearn's NaN into 0 with ``np.nan_to_num``).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    targets = np.asarray(targets).reshape(-1).astype(bool)
    if scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} differ in length")
    n_pos = int(np.count_nonzero(targets))
    if n_pos == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    scores, targets = scores[order], targets[order]
    # last index of each run of equal scores: the points of the precision-recall curve
    ends = np.r_[np.flatnonzero(np.diff(scores) != 0), scores.size - 1]
    true_pos = np.cumsum(targets)[ends]
    precision = true_pos / (ends + 1)
    recall_step = np.diff(np.r_[0, true_pos]) / n_pos
    return float(np.sum(recall_step * precision))


def minmax_relevance(upsampled: np.ndarray) -> np.ndarray:
    """The ImageNet-segmentation map normalisation: clamp below at 0, then min-max to [0, 1] (constant -> zeros)."""
    m = np.clip(np.asarray(upsampled, dtype=np.float32), 0, None)
    low, span = m.min(), m.max() - m.min()
    return (m - low) / span if span > 0 else np.zeros_like(m)


def two_class_ap(soft_map, mask) -> float:
    """The original's per-image AP: scores (1 - map, map) against one-hot (background, foreground), flattened."""
    soft_map = np.asarray(soft_map, dtype=np.float64)
    mask = np.asarray(mask).astype(bool)
    scores = np.concatenate([(1.0 - soft_map).reshape(-1), soft_map.reshape(-1)])
    targets = np.concatenate([~mask.reshape(-1), mask.reshape(-1)])
    return float(np.nan_to_num(average_precision(scores, targets)))


class BinarySegmentationAccumulator:
    """pixAcc, two-class mIoU and mAP of soft foreground maps against binary masks, summed over a data set.

    ``update(soft_map [H, W] in [0, 1], mask [H, W] bool)`` per image; the prediction is ``map > threshold`` with
    ``threshold = mean(map)`` by default (the original's). ``result()`` -> ``{"pixel_accuracy", "miou",
    "iou_background", "iou_foreground", "map", "n_images"}``.
    """

    def __init__(self):
        self.correct = 0
        self.labeled = 0
        self.intersection = np.zeros(2, dtype=np.int64)
        self.union = np.zeros(2, dtype=np.int64)
        self.ap: list[float] = []

    def update(self, soft_map, mask, threshold: float | None = None) -> "BinarySegmentationAccumulator":
        soft_map = np.asarray(soft_map, dtype=np.float64)
        mask = np.asarray(mask).astype(bool)
        if soft_map.shape != mask.shape:
            raise ValueError(f"map {soft_map.shape} and mask {mask.shape} differ in shape")
        if not np.all(np.isfinite(soft_map)):
            raise ValueError("the map has non-finite values")
        pred = soft_map > (soft_map.mean() if threshold is None else threshold)
        self.correct += int(np.count_nonzero(pred == mask))
        self.labeled += mask.size
        for cls, (p, t) in enumerate(((~pred, ~mask), (pred, mask))):
            inter = int(np.count_nonzero(p & t))
            self.intersection[cls] += inter
            self.union[cls] += int(np.count_nonzero(p)) + int(np.count_nonzero(t)) - inter
        self.ap.append(two_class_ap(soft_map, mask))
        return self

    def result(self) -> dict:
        tiny = np.spacing(1, dtype=np.float64)
        iou = self.intersection / (tiny + self.union)
        return {
            "pixel_accuracy": float(self.correct / (tiny + self.labeled)),
            "miou": float(iou.mean()),
            "iou_background": float(iou[0]),
            "iou_foreground": float(iou[1]),
            "map": float(np.mean(self.ap)) if self.ap else float("nan"),
            "n_images": len(self.ap),
        }
