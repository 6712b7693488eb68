"""Segmentation metrics: confusion mIoU (ignore index, absent modes, accumulation) and the ImageNet-seg metrics."""

import numpy as np
import pytest

from clipxai.metrics.segmentation import (BinarySegmentationAccumulator, ConfusionAccumulator, average_precision,
                                          confusion_miou, minmax_relevance, two_class_ap)
from clipxai.seeding import rng

LABEL = np.array([0, 0, 1, 1, 255])
PRED = np.array([0, 1, 1, 1, 2])   # the class-2 prediction lies on an ignored pixel


def test_hand_worked_miou_with_ignore_index_and_both_absent_modes():
    # rows = label, cols = prediction: label 0 -> {0: 1, 1: 1}; label 1 -> {1: 2}; class 2 nowhere once 255 is dropped
    zero = confusion_miou(PRED, LABEL, num_classes=3, absent="zero")
    assert zero["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert zero["per_class"] == pytest.approx([1 / 2, 2 / 3, 0.0], abs=1e-6)
    assert zero["miou"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3, abs=1e-6)
    assert zero["present"].tolist() == [True, True, False]
    exclude = confusion_miou(PRED, LABEL, num_classes=3, absent="exclude")
    assert exclude["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-6)
    assert np.isnan(exclude["per_class"][2])


def test_ignore_index_none_counts_every_pixel():
    label = np.array([0, 1, 2])
    result = confusion_miou(np.array([0, 1, 1]), label, num_classes=3, ignore_index=None)
    assert result["confusion"].sum() == 3


def test_accumulating_batches_equals_one_big_batch():
    gen = rng(0, "test", "confusion")
    preds = [gen.integers(0, 5, size=(3, 8, 8)) for _ in range(4)]
    labels = [np.where(gen.random((3, 8, 8)) < 0.1, 255, gen.integers(0, 5, size=(3, 8, 8))) for _ in range(4)]
    acc = ConfusionAccumulator(5, ignore_index=255)
    for p, l in zip(preds, labels):
        acc.update(p, l)
    whole = confusion_miou(np.concatenate(preds), np.concatenate(labels), 5)
    assert np.array_equal(acc.result()["confusion"], whole["confusion"])
    assert acc.result()["miou"] == whole["miou"]
    # and differs from the mean of per-batch mIoUs (accumulation is not averaging)
    per_batch = np.mean([confusion_miou(p, l, 5)["miou"] for p, l in zip(preds, labels)])
    assert acc.result()["miou"] != pytest.approx(per_batch, abs=1e-9)


def test_out_of_range_classes_raise():
    with pytest.raises(ValueError):
        confusion_miou(np.array([0, 3]), np.array([0, 1]), num_classes=3)
    with pytest.raises(ValueError):
        confusion_miou(np.array([0, 1]), np.array([0, 7]), num_classes=3)


def test_average_precision_hand_cases():
    # scikit-learn's documented example: 0.8333
    assert average_precision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.8333333333)
    # P@1 = 1 (R 0.5), P@3 = 2/3 (R 1)
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # ties enter together: the tie at 0.5 holds one positive, one negative -> P = 2/3 at R = 1
    assert average_precision([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision([0.3, 0.2], [0, 0]) == 0.0


def test_binary_segmentation_hand_case():
    soft = np.array([[0.9, 0.1], [0.8, 0.2]])   # mean 0.5 -> prediction [[1, 0], [1, 0]]
    mask = np.array([[1, 0], [0, 0]], bool)
    result = BinarySegmentationAccumulator().update(soft, mask).result()
    assert result["pixel_accuracy"] == pytest.approx(3 / 4)
    assert result["iou_foreground"] == pytest.approx(1 / 2)
    assert result["iou_background"] == pytest.approx(2 / 3)
    assert result["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # two channels (1 - map vs background, map vs foreground) flattened: worked by hand in the module's terms
    assert result["map"] == pytest.approx(0.5 * 1 + 0.25 * 0.75 + 0.25 * 4 / 6)
    assert two_class_ap(soft, mask) == pytest.approx(result["map"])


def test_binary_segmentation_sums_over_images_before_dividing():
    acc = BinarySegmentationAccumulator()
    acc.update(np.array([[1.0, 0.0]]), np.array([[True, False]]))          # perfect, 2 pixels
    acc.update(np.zeros((1, 6)) + np.eye(1, 6), np.zeros((1, 6), bool))   # 1 wrong of 6
    result = acc.result()
    assert result["pixel_accuracy"] == pytest.approx(7 / 8)
    assert result["iou_foreground"] == pytest.approx(1 / 2)   # inter 1, union 1 + 1
    assert result["n_images"] == 2


def test_minmax_relevance_clamps_negatives_first():
    out = minmax_relevance(np.array([[-2.0, 0.0], [1.0, 2.0]]))
    assert out.tolist() == [[0.0, 0.0], [0.5, 1.0]]
    assert not minmax_relevance(np.full((2, 2), -1.0)).any()


def test_constant_map_faithful_is_nan_corrected_is_zeros():
    assert np.isnan(minmax_relevance(np.full((2, 2), 0.3), mode="faithful")).all()
    assert np.isnan(minmax_relevance(np.full((2, 2), -1.0), mode="faithful")).all()  # all below 0: constant too
    assert minmax_relevance(np.full((2, 2), 0.3), mode="corrected").tolist() == [[0.0, 0.0], [0.0, 0.0]]
    # a map that varies is normalised the same way in both modes
    varied = np.array([[-2.0, 0.0], [1.0, 2.0]])
    assert minmax_relevance(varied, "faithful").tolist() == minmax_relevance(varied, "corrected").tolist()
    with pytest.raises(ValueError, match="mode"):
        minmax_relevance(varied, "other")


def test_constant_map_ap_faithful_half_corrected_all_background():
    # 2x2 image, one foreground pixel (background share b = 3/4); the map is constant.
    mask = np.array([[1, 0], [0, 0]], bool)
    faithful = BinarySegmentationAccumulator().update(minmax_relevance(np.full((2, 2), 5.0), "faithful"), mask)
    corrected = BinarySegmentationAccumulator().update(minmax_relevance(np.full((2, 2), 5.0), "corrected"), mask)
    faithful, corrected = faithful.result(), corrected.result()
    # faithful: NaN -> 0 in both AP channels, 8 tied scores of which 4 positive: AP = 4/8
    assert faithful["map"] == pytest.approx(0.5)
    # corrected: background channel all 1 (3 of its 4 positive), foreground channel all 0 (1 of 4):
    # P = 3/4 at R = 3/4, then P = 4/8 at R = 1 -> 3/4 * 3/4 + 1/2 * 1/4 = 11/16
    assert corrected["map"] == pytest.approx(11 / 16)
    # both predict all background: pixel accuracy and IoUs agree
    for result in (faithful, corrected):
        assert result["pixel_accuracy"] == pytest.approx(3 / 4)
        assert result["iou_foreground"] == pytest.approx(0.0)
        assert result["iou_background"] == pytest.approx(3 / 4)


def test_partly_non_finite_maps_are_still_refused():
    with pytest.raises(ValueError, match="non-finite"):
        BinarySegmentationAccumulator().update(np.array([[np.nan, 0.5]]), np.array([[True, False]]))
    with pytest.raises(ValueError, match="non-finite"):
        BinarySegmentationAccumulator().update(np.array([[np.inf, 0.5]]), np.array([[True, False]]))


def test_protocol_scores_a_constant_grid_per_mode():
    from clipxai.protocols.segmentation import score

    mask = np.zeros((4, 4), bool)
    mask[:1, :1] = True  # 1 of 16 pixels: b = 15/16
    faithful = score([np.full((2, 2), -3.0)], [mask], size=4, mode="faithful")
    corrected = score([np.full((2, 2), -3.0)], [mask], size=4, mode="corrected")
    assert faithful["map"] == pytest.approx(0.5)
    assert corrected["map"] == pytest.approx((15 / 16) ** 2 + 0.5 * (1 / 16))
    assert faithful["pixel_accuracy"] == corrected["pixel_accuracy"] == pytest.approx(15 / 16)
