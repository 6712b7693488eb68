"""Zero-shot top-k and worst-group accuracy against hand-worked cases."""

import numpy as np
import pytest

from clipxai.metrics.classification import group_accuracy, topk_correct, worst_group_accuracy, zero_shot_accuracy

LOGITS = np.array([[0.1, 0.9, 0.0, 0.3],     # ranking 1, 3, 0, 2
                   [0.5, 0.2, 0.4, 0.1],     # ranking 0, 2, 1, 3
                   [0.2, 0.2, 0.1, 0.0]])    # tie 0/1 -> lower index first


def test_top1_top2_and_k_beyond_the_classes():
    labels = np.array([1, 2, 1])
    assert topk_correct(LOGITS, labels, 1).tolist() == [True, False, False]
    assert topk_correct(LOGITS, labels, 2).tolist() == [True, True, True]
    result = zero_shot_accuracy(LOGITS, labels, ks=(1, 5))
    assert result == {"top1": pytest.approx(1 / 3), "top5": 1.0}


def test_worst_group_is_the_minimum_over_present_groups():
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    place = np.array([0, 0, 1, 1, 1, 0, 0])
    correct = np.array([1, 1, 0, 1, 0, 1, 1], bool)
    result = group_accuracy(correct, y, place)
    assert result["groups"] == {(0, 0): {"n": 2, "accuracy": 1.0}, (0, 1): {"n": 1, "accuracy": 0.0},
                                (1, 0): {"n": 2, "accuracy": 1.0}, (1, 1): {"n": 2, "accuracy": 0.5}}
    assert result["worst_group"] == 0.0 and result["worst"] == (0, 1)
    assert result["mean"] == pytest.approx(5 / 7)
    assert result["group_mean"] == pytest.approx(2.5 / 4)


def test_worst_group_from_logits():
    logits = np.array([[2.0, 1.0], [0.0, 1.0], [0.0, 1.0], [3.0, 0.0]])
    y = np.array([0, 1, 0, 1])
    place = np.array([0, 1, 0, 1])
    result = worst_group_accuracy(logits, y, place)
    assert result["groups"][(0, 0)]["accuracy"] == 0.5 and result["groups"][(1, 1)]["accuracy"] == 0.5
    assert result["worst_group"] == 0.5
