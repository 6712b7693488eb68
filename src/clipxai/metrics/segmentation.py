"""Segmentation metrics: multi-class confusion mIoU (VOC, seed 002) and the ImageNet-segmentation protocol
(pixel accuracy, two-class mIoU, mAP; docs/protocols.md D), each usable at once or accumulated batch by batch.

Multi-class mIoU, faithful (CLIPpy's ``PascalEvaluator``): confusion matrix with rows = label, columns = prediction,
pixels labelled ``ignore_index`` dropped; ``IoU_c = diag / (row + col - diag + eps)`` with eps = float32 machine
epsilon, so a class absent from both prediction and label gets 0 (not NaN) and pulls the ``nanmean`` down.
Corrected: such a class is left out of the mean.

ImageNet segmentation (Chefer et al.'s evaluation, reused by TextSpan): prediction = ``map > mean(map)``; correct and
labelled pixels, and per-class intersection and union of the two classes (background, foreground), are summed over
the data set before dividing (``x / (spacing(1) + total)``); mAP = mean over images of the average precision of the
two-channel score (``1 - map`` for background, ``map`` for foreground) against the one-hot label, flattened together.

A constant map (all equal after the clamp at 0, e.g. a class map below its mean everywhere) has no min-max
normalisation. Two definitions (``mode``):

- faithful (the original): ``0 / 0`` gives NaN everywhere; the original then sets NaN to 0 in both AP channels, so
  AP is that of an all-zero score, which is the one-hot's prevalence, 0.5; the prediction is all background.
- corrected (clipxai): the normalised map is all zeros, i.e. "no pixel stands out": all background, with the score
  ``(1 - 0, 0)`` that says so. AP then agrees with the prediction that pixel accuracy and mIoU score (all
  background), instead of scoring a different, all-tied ranking.

Pixel accuracy and mIoU are the same in both modes.
"""

from __future__ import annotations

import numpy as np

ABSENT = ("zero", "exclude")
MODES = ("faithful", "corrected")  # the ImageNet-segmentation definitions of a constant map (module docstring)
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
    """Binary average precision, ``sklearn.metrics.average_precision_score`` (what the original evaluation calls):
    sum_n (R_n - R_{n-1}) P_n over the distinct scores, tied scores entering together, no interpolation.

    No positive target -> 0.0 (scikit-learn warns and the original turned its result into 0 with
    ``np.nan_to_num``).
    """
    from sklearn.metrics import average_precision_score  # heavy: only when AP is computed

    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    targets = np.asarray(targets).reshape(-1).astype(bool)
    if scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} differ in length")
    if not targets.any():
        return 0.0
    return float(average_precision_score(targets, scores))


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def minmax_relevance(upsampled: np.ndarray, mode: str = "corrected") -> np.ndarray:
    """The ImageNet-segmentation map normalisation: clamp below at 0, then min-max to [0, 1].

    A constant map: zeros (corrected) or NaN everywhere (faithful: the original's ``0 / 0``).
    """
    _check_mode(mode)
    m = np.clip(np.asarray(upsampled, dtype=np.float32), 0, None)
    low, span = m.min(), m.max() - m.min()
    if span > 0:
        return (m - low) / span
    return np.zeros_like(m) if mode == "corrected" else np.full_like(m, np.nan)


def two_class_ap(soft_map, mask) -> float:
    """The original's per-image AP: scores (1 - map, map) against one-hot (background, foreground), flattened.

    NaN scores become 0 in both channels first (the original's NaN-to-0 step; only a faithful-mode constant map
    has them), so an all-NaN map scores as an all-zero score.
    """
    soft_map = np.asarray(soft_map, dtype=np.float64)
    mask = np.asarray(mask).astype(bool)
    background, foreground = np.nan_to_num(1.0 - soft_map), np.nan_to_num(soft_map)
    scores = np.concatenate([background.reshape(-1), foreground.reshape(-1)])
    targets = np.concatenate([~mask.reshape(-1), mask.reshape(-1)])
    return float(np.nan_to_num(average_precision(scores, targets)))


class BinarySegmentationAccumulator:
    """pixAcc, two-class mIoU and mAP of soft foreground maps against binary masks, summed over a data set.

    ``update(soft_map [H, W] in [0, 1], mask [H, W] bool)`` per image; the prediction is ``map > threshold`` with
    ``threshold = mean(map)`` by default (the original's). An all-NaN map (the faithful normalisation of a constant
    map) predicts all background and scores AP on an all-zero score. ``result()`` -> ``{"pixel_accuracy", "miou",
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
        if threshold is None and soft_map.size and np.isnan(soft_map).all():
            # the faithful normalisation of a constant map: NaN > NaN is False, all background, as the original
            pred = np.zeros(soft_map.shape, dtype=bool)
        elif not np.all(np.isfinite(soft_map)):
            raise ValueError("the map has non-finite values")
        else:
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
