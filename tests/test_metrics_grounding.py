"""Grounding metrics (docs/protocols.md C) against hand-worked cases, and the faithful quirks next to their fixes."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.filters import threshold_otsu

from clipxai.data.transforms import pad_array_to_square, pad_to_square, square_padding
from clipxai.metrics import grounding
from clipxai.metrics.grounding import (ExcludedEntry, binary_ious, image_iou, otsu_binarise, phrase_token_labels,
                                       prepare_mask, token_iou, upsample_unit)
from clipxai.seeding import rng

torch.set_num_threads(1)


def _confmat_macro(pred, target):
    """Independent reference: torchmetrics 0.9.1 _jaccard_from_confmat semantics on a 2x2 confusion matrix."""
    conf = np.bincount(target.astype(int).ravel() * 2 + pred.astype(int).ravel(), minlength=4).reshape(2, 2)
    inter = np.diag(conf).astype(float)
    union = conf.sum(0) + conf.sum(1) - inter
    scores = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)  # absent_score = 0
    return scores.mean(), scores[1]


# ------------------------------------------------------------------------------------------ two-class IoU


def test_empty_target_and_empty_prediction_score_half_not_one():
    # foreground absent from both -> scores 0 (absent_score), background IoU 1 -> macro 0.5
    result = binary_ious(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    assert result == {"macro": 0.5, "fg": 0.0, "bg": 1.0}


def test_hand_worked_two_class_iou():
    pred = np.array([1, 1, 0, 0], bool)
    target = np.array([1, 0, 0, 0], bool)
    result = binary_ious(pred, target)
    assert result["fg"] == pytest.approx(1 / 2)          # {0} / {0, 1}
    assert result["bg"] == pytest.approx(2 / 3)          # {2, 3} / {1, 2, 3}
    assert result["macro"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_two_class_iou_matches_confusion_matrix_reference_on_random_cases():
    gen = rng(0, "test", "confmat")
    for _ in range(200):
        n = int(gen.integers(1, 12))
        pred, target = gen.random(n) < gen.random(), gen.random(n) < gen.random()
        macro, fg = _confmat_macro(pred, target)
        result = binary_ious(pred, target)
        assert result["macro"] == pytest.approx(macro) and result["fg"] == pytest.approx(fg)


def test_otsu_threshold_is_strict():
    # Otsu returns the centre of histogram bin 127, 127.5/256; pixels exactly there must be background
    at_threshold = 127.5 / 256
    values = np.array([0.0] * 50 + [1.0] * 50 + [at_threshold] * 5)
    assert threshold_otsu(values) == at_threshold  # precondition of this test
    prediction = otsu_binarise(values)
    assert not prediction[values == at_threshold].any()
    assert prediction[values == 1.0].all() and not prediction[values == 0.0].any()


def test_otsu_on_bimodal_map_recovers_the_object():
    gen = rng(0, "test", "bimodal")
    relevance = gen.normal(0.2, 0.05, size=(40, 40))
    mask = np.zeros((40, 40), bool)
    mask[10:25, 5:30] = True
    relevance[mask] = gen.normal(0.8, 0.05, size=mask.sum())
    assert np.array_equal(otsu_binarise(relevance), mask)
    assert image_iou(relevance, mask) == {"macro": 1.0, "fg": 1.0}


def test_constant_map_predicts_nothing():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True  # 4 of 16 pixels
    result = image_iou(np.full((4, 4), 0.7), mask)
    assert result["fg"] == 0.0
    assert result["macro"] == pytest.approx(12 / 16 / 2)  # background IoU 12/16, foreground 0


def test_random_maps_on_random_masks_land_near_a_quarter_to_a_third():
    gen = rng(0, "test", "random-maps")
    macros, fgs = [], []
    for _ in range(300):
        mask = np.zeros((48, 48), bool)
        y0, x0 = gen.integers(0, 40, size=2)
        h, w = gen.integers(4, 48, size=2)
        mask[y0:y0 + h, x0:x0 + w] = True
        result = image_iou(gen.random((48, 48)), mask)
        macros.append(result["macro"])
        fgs.append(result["fg"])
    # a U(0,1) map thresholded near 0.5 against a mask of area fraction f: fg = f/(1+f), bg = (1-f)/(2-f)
    assert 0.25 <= np.mean(macros) <= 0.335
    assert np.mean(fgs) < np.mean(macros)


def test_token_iou_drops_nan_positions():
    scores = np.array([np.nan, 0.05, 0.45, 0.5, np.nan, np.nan])
    labels = np.array([False, False, True, True, False, False])
    assert token_iou(scores, labels) == {"macro": 1.0, "fg": 1.0}
    # without the NaN handling the padding would count as (correct) background and change the background IoU
    wrong = np.array([False, True, True, True, False, False])
    assert token_iou(scores, wrong)["fg"] == pytest.approx(2 / 3)


def test_token_iou_rejects_a_label_on_a_padding_position():
    with pytest.raises(ValueError, match="misaligned"):
        token_iou(np.array([0.1, np.nan]), np.array([False, True]))


# ------------------------------------------------------------------------------------------- image side


def test_square_padding_geometry_as_clip_grounding():
    assert square_padding(427, 640, "faithful") == (106, 106, 0, 0)   # one pixel short of square
    assert square_padding(427, 640, "exact") == (106, 107, 0, 0)
    assert square_padding(640, 427, "faithful") == (0, 0, 106, 106)
    assert square_padding(300, 300, "exact") == (0, 0, 0, 0)


def test_pad_to_square_centres_the_image_on_black():
    image = Image.new("RGB", (6, 3), (255, 255, 255))
    padded = pad_to_square(image)  # faithful: (6 - 3) // 2 = 1 row on top and bottom -> 6 x 5
    assert padded.size == (6, 5)
    pixels = np.asarray(padded)
    assert (pixels[0] == 0).all() and (pixels[-1] == 0).all() and (pixels[1:4] == 255).all()
    assert pad_to_square(image, "exact").size == (6, 6)
    mask = np.ones((3, 6), bool)
    assert np.array_equal(pad_array_to_square(mask), pixels[..., 0] > 0)


def test_faithful_mask_is_eroded_relative_to_nearest():
    mask = np.zeros((120, 160), bool)
    mask[30:90, 40:120] = True
    faithful = prepare_mask(mask, 32, "faithful")
    corrected = prepare_mask(mask, 32, "corrected")
    assert faithful.shape == corrected.shape == (32, 32)
    # the rectangle covers 60x80 of a 160x160 padded square: ~12x16 pixels at 32 px
    assert corrected.sum() >= 150
    assert faithful.sum() < corrected.sum() - 20      # a ring of edge pixels lost
    assert not (faithful & ~corrected).any()           # erosion only removes
    # exactly the pixels that are 255 after PIL's bicubic resize survive
    padded = Image.fromarray(pad_array_to_square(mask.astype(np.uint8) * 255), mode="L")
    bicubic = np.asarray(padded.resize((32, 32), Image.Resampling.BICUBIC))
    assert np.array_equal(faithful, bicubic == 255)


def test_thin_structures_vanish_in_faithful_mode_only():
    mask = np.zeros((200, 200), bool)
    mask[:, 98:104] = True  # 6 px wide pole -> ~1 px at 32 px
    assert not prepare_mask(mask, 32, "faithful").any()
    assert prepare_mask(mask, 32, "corrected").any()


def test_upsample_unit_matches_bilinear_and_normalises():
    grid = np.array([[0.0, 1.0], [2.0, 3.0]], np.float32)
    up = upsample_unit(grid, 4)
    expected = torch.nn.functional.interpolate(torch.tensor(grid)[None, None], size=4, mode="bilinear",
                                               align_corners=False)[0, 0].numpy()
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    assert np.allclose(up, expected) and up.min() == 0.0 and up.max() == 1.0
    same = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert np.allclose(upsample_unit(same, 4), same / 15)      # same size: only the normalisation
    assert not upsample_unit(np.ones((3, 3)), 8).any()        # constant grid -> zeros, not NaN


# -------------------------------------------------------------------------------------------- text side


def test_faithful_span_is_wrong_when_the_first_token_occurs_earlier():
    caption = "a man holding a dog"
    span = (caption.rindex("a dog"), len(caption))
    tokens, faithful = phrase_token_labels(caption, "a dog", span, mode="faithful")
    _, corrected = phrase_token_labels(caption, "a dog", span, mode="corrected")
    assert len(tokens) == 5
    assert faithful.tolist() == [True] * 5                       # list.index("a ") finds the first "a"
    assert corrected.tolist() == [False, False, False, True, True]


def test_faithful_span_is_empty_when_the_last_token_occurs_before_the_first():
    caption = "dog and a dog"
    _, faithful = phrase_token_labels(caption, "a dog", (8, 13), mode="faithful")
    _, corrected = phrase_token_labels(caption, "a dog", (8, 13), mode="corrected")
    assert not faithful.any()
    assert corrected.tolist() == [False, False, True, True]


@pytest.mark.parametrize("caption", [
    "In this image, we can see a man's dog. There are 12 trees; the sky is blue!",
    "a woman (in red) holds \"two\" umbrellas,and a child-like doll...",
])
def test_corrected_prefix_counting_is_exact_at_word_boundaries(caption):
    tok = grounding.default_tokenizer()
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", caption)]
    checked = 0
    for i in range(len(words)):
        for j in range(i, min(i + 4, len(words))):
            start, end = words[i][0], words[j][1]
            utterance = caption[start:end]
            tokens, labels = phrase_token_labels(caption, utterance, (start, end), mode="corrected")
            assert [t for t, keep in zip(tokens, labels) if keep] == tok.encode(utterance), utterance
            assert np.flatnonzero(labels).tolist() == list(range(labels.argmax(), labels.argmax() + labels.sum()))
            checked += 1
    assert checked > 30


def test_corrected_span_inside_a_word_is_excluded_with_a_reason():
    with pytest.raises(ExcludedEntry) as info:
        phrase_token_labels("dogs run", "dog", (0, 3), mode="corrected")
    assert info.value.reason == "span_not_on_token_boundary"
    with pytest.raises(ExcludedEntry) as info:
        phrase_token_labels("a dog", "cat", (3, 9), mode="corrected")
    assert info.value.reason == "char_span_invalid"


def test_faithful_lookup_failures_are_the_originals_exceptions():
    with pytest.raises(ExcludedEntry) as info:
        phrase_token_labels("a dog", "cat", (0, 0), mode="faithful")
    assert info.value.reason == "raised:token_not_found"
    with pytest.raises(ExcludedEntry) as info:
        phrase_token_labels("a dog", "", (0, 0), mode="faithful")
    assert info.value.reason == "raised:empty_phrase"


def test_faithful_word_limit_counts_space_separated_words():
    assert not grounding.faithful_too_long(" ".join(["w"] * 70))
    assert grounding.faithful_too_long(" ".join(["w"] * 71))


def test_default_tokenizer_loaded_alone_encodes_like_open_clips(tmp_path):
    # In a fresh interpreter (open_clip not imported) default_tokenizer loads open_clip's tokenizer module alone;
    # it must be the same BPE as the package's, and must not have imported the package.
    script = textwrap.dedent("""
        import json, sys
        from clipxai.metrics.grounding import default_tokenizer
        tok = default_tokenizer()
        loaded = "open_clip" in sys.modules
        texts = ["a red circle and a blue star", "In this image, we can see a man's dog. 12 trees!", "naïve café"]
        print(json.dumps({"package_imported": loaded, "ids": [tok.encode(t) for t in texts],
                          "decoded": tok.decode(tok.encode(texts[1]))}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    alone = json.loads(result.stdout)
    assert alone["package_imported"] is False
    from open_clip.tokenizer import SimpleTokenizer

    reference = SimpleTokenizer()
    texts = ["a red circle and a blue star", "In this image, we can see a man's dog. 12 trees!", "naïve café"]
    assert alone["ids"] == [reference.encode(t) for t in texts]
    assert alone["decoded"] == reference.decode(reference.encode(texts[1]))
