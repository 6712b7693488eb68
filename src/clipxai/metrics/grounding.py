"""Grounding metrics of CLIP-grounding on Panoptic Narrative Grounding (docs/protocols.md section C), both modes.

A relevance map (an image map for text->image, a token vector for image->text) is binarised at its Otsu threshold
with a strict ``>`` and compared with the ground truth (the phrase's mask, or the phrase's tokens in the caption).

The paper's "IoU" is the two-class macro Jaccard index of torchmetrics 0.9.1, ``JaccardIndex(num_classes=2)`` called
once per entry. What that computes, read from torchmetrics' source of that era
(``torchmetrics/functional/classification/jaccard.py``, ``_jaccard_from_confmat``; default ``average="macro"``,
``absent_score=0.0``, ``ignore_index=None``): a 2x2 confusion matrix of the single map (rows target, columns
prediction); per class ``IoU_c = diag_c / (row_c + col_c - diag_c)``; a class whose union is 0 (absent from both the
prediction and the target) scores ``absent_score = 0``; macro = the plain mean of the two class scores. So a map that
predicts nothing against an empty target scores 0.5, not 1. The original passed uint8 0/1 tensors, so no
probability threshold was involved.

Modes: ``"faithful"`` reproduces the original code's choices, bugs included; ``"corrected"`` fixes them
(see :func:`prepare_mask` and :func:`phrase_token_labels`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.filters import threshold_otsu

from clipxai.data.transforms import pad_array_to_square
from clipxai.metrics.maps import bilinear

MODES = ("faithful", "corrected")

# Captions with more space-separated words than this were skipped by the original image->text evaluation.
FAITHFUL_MAX_WORDS = 70


class ExcludedEntry(Exception):
    """An entry that a protocol leaves out; ``reason`` is the short tag written to the per-entry table."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


# ----------------------------------------------------------------------------------------------------- IoU


def otsu_binarise(values: np.ndarray) -> np.ndarray:
    """``values > threshold_otsu(values)`` (strict), as a bool array of the same shape.

    A constant map has no Otsu threshold (no between-class variance to maximise). Choice, documented: it predicts
    nothing (all background). That is what skimage does (it returns the constant itself as the threshold, and the
    strict ``>`` selects no element), and it is the honest reading of a map that singles nothing out.
    """
    values = np.asarray(values)
    if values.size == 0:
        raise ValueError("cannot binarise an empty map")
    if not np.all(np.isfinite(values)):
        raise ValueError("the map has non-finite values")
    flat = values.reshape(-1)
    if np.all(flat == flat[0]):
        return np.zeros(values.shape, dtype=bool)
    return values > threshold_otsu(values)


def binary_ious(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Foreground IoU, background IoU and their mean ("macro") of one binary prediction against one target.

    A class absent from both prediction and target scores 0 (torchmetrics 0.9.1 ``absent_score=0``), in "fg" too.
    """
    prediction = np.asarray(prediction, dtype=bool)
    target = np.asarray(target, dtype=bool)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
    n = prediction.size
    both = int(np.count_nonzero(prediction & target))
    n_pred = int(np.count_nonzero(prediction))
    n_target = int(np.count_nonzero(target))
    fg_union = n_pred + n_target - both
    neither = n - fg_union
    bg_union = n - both  # pixels that are background in the prediction or in the target
    fg = both / fg_union if fg_union else 0.0
    bg = neither / bg_union if bg_union else 0.0
    return {"macro": (fg + bg) / 2.0, "fg": fg, "bg": bg}


def image_iou(relevance: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Score an image relevance map against a phrase mask of the same shape.

    ``relevance``: float [H, W], any scale (Otsu is scale-free); ``mask``: bool [H, W]. The map is binarised with
    ``map > otsu(map)`` (a constant map predicts nothing, see :func:`otsu_binarise`). Returns ``{"macro": two-class
    macro Jaccard as in the paper, "fg": plain foreground IoU}``; an empty class in both scores 0.
    """
    relevance = np.asarray(relevance)
    mask = np.asarray(mask)
    if relevance.ndim != 2 or relevance.shape != mask.shape:
        raise ValueError(f"relevance {relevance.shape} and mask {mask.shape} must be the same [H, W]")
    scores = binary_ious(otsu_binarise(relevance), mask.astype(bool))
    return {"macro": scores["macro"], "fg": scores["fg"]}


def token_iou(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Score token relevance against the phrase's token labels: the same metric as :func:`image_iou` over a vector.

    ``scores``: float [T], NaN where there is no token (padding, start/end tokens): those positions are dropped
    from both vectors before Otsu. ``labels``: bool [T]; a True label on a NaN position is an alignment bug and
    raises ``ValueError``.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in length")
    present = ~np.isnan(scores)
    if np.any(labels & ~present):
        raise ValueError("a phrase token has no score (NaN): scores and labels are misaligned")
    if not np.any(present):
        raise ValueError("no token has a score")
    result = binary_ious(otsu_binarise(scores[present]), labels[present])
    return {"macro": result["macro"], "fg": result["fg"]}


# ------------------------------------------------------------------------------------------- image side


def upsample_unit(grid: np.ndarray | torch.Tensor, size: int | tuple[int, int]) -> np.ndarray:
    """Patch-grid maps [B, gh, gw] (or one [gh, gw]) -> bilinear (align_corners=False) to ``size`` -> min-max [0, 1].

    As the original: ``F.interpolate(mode="bilinear")`` then ``(m - min) / (max - min)`` per map, in float32.
    A constant map (max == min), where the original divided by zero, becomes all zeros. A grid already at ``size``
    comes back unchanged apart from the normalisation (bilinear resampling to the same size is the identity).
    """
    grid_t = torch.as_tensor(np.asarray(grid, dtype=np.float32))
    single = grid_t.ndim == 2
    if single:
        grid_t = grid_t[None]
    if grid_t.ndim != 3:
        raise ValueError(f"expected a grid [B, gh, gw] or [gh, gw], got shape {tuple(grid_t.shape)}")
    if not torch.isfinite(grid_t).all():
        raise ValueError("the grid has non-finite values")
    size = (size, size) if isinstance(size, int) else tuple(size)
    maps = bilinear(grid_t, size)
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    maps = torch.where(span > 0, (maps - low) / torch.where(span > 0, span, torch.ones_like(span)),
                       torch.zeros_like(maps))
    out = maps.numpy()
    return out[0] if single else out


def prepare_mask(mask: np.ndarray, size: int, mode: str, padding: str = "faithful") -> np.ndarray:
    """A phrase mask at image resolution -> bool [size, size], aligned with the padded, resized model input.

    Pads to a square with background like the image (``padding``, see :mod:`clipxai.data.transforms`; it must be
    the padding the image got), then resizes to ``size`` x ``size``:

    - faithful: as CLIP-grounding, a 0/255 uint8 image resized with PIL's default filter for 8-bit images
      (bicubic, Pillow 9.1.1 pinned by the original and still so), then ``/255`` and cast to uint8: only pixels
      that are exactly 255 after resampling stay foreground, so every edge is eroded and thin parts vanish.
    - corrected: nearest-neighbour resize of the boolean mask (no erosion).
    """
    _check_mode(mode)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a mask [H, W], got shape {mask.shape}")
    padded = pad_array_to_square(mask.astype(bool).astype(np.uint8) * 255, padding)
    image = Image.fromarray(padded, mode="L")
    if mode == "faithful":
        resized = np.asarray(image.resize((size, size), Image.Resampling.BICUBIC))
        return (resized / 255.0).astype(np.uint8).astype(bool)
    resized = np.asarray(image.resize((size, size), Image.Resampling.NEAREST))
    return resized > 0


# -------------------------------------------------------------------------------------------- text side


@functools.lru_cache(maxsize=1)
def default_tokenizer():
    """OpenAI's BPE as open_clip ships it (the tokenizer of every CLIP this project evaluates).

    A scoring job needs only this tokenizer, but ``import open_clip.tokenizer`` first runs ``open_clip/__init__``,
    which imports every model, torchvision and transformers: about 4 s of a 7 s job. So unless open_clip is
    already imported, its tokenizer module (standard library, ftfy, regex, numpy and torch only) is loaded from
    the installed open_clip on its own; tests/test_metrics_grounding.py checks it encodes like the package's.
    """
    import importlib.util
    import sys

    if "open_clip" not in sys.modules:
        package = importlib.util.find_spec("open_clip")  # locates the package without importing it
        if package is not None and package.submodule_search_locations:
            path = Path(list(package.submodule_search_locations)[0]) / "tokenizer.py"
            spec = importlib.util.spec_from_file_location("clipxai._open_clip_tokenizer", path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
                return module.SimpleTokenizer()
            except ImportError:  # a later open_clip whose tokenizer needs its package: take the slow path
                pass
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def faithful_too_long(caption: str) -> bool:
    """The original skipped image->text entries whose text had more than 70 words, counted as ``split(" ")``."""
    return len(caption.split(" ")) > FAITHFUL_MAX_WORDS


def phrase_token_labels(caption: str, utterance: str, char_span: tuple[int, int], tokenizer=None,
                        mode: str = "corrected") -> tuple[list[int], np.ndarray]:
    """BPE tokens of ``caption`` (no start/end token) and a bool label per token: True on the phrase's tokens.

    ``tokenizer``: an object with ``encode(str) -> list[int]`` and ``decode(list[int]) -> str`` (open_clip's
    SimpleTokenizer; the default). Raises :class:`ExcludedEntry` when the entry cannot be labelled.

    - faithful: as CLIP-grounding's ``process_text_mask``: the phrase is tokenised alone, each sub-token decoded, and
      the span is ``list.index`` of the first and of the last decoded sub-token in the caption's decoded tokens,
      i.e. their *first occurrences anywhere* in the caption; labels ``[first : last + 1]``. Wrong whenever one of
      them occurs earlier ("a dog" in "a man with a dog" labels the whole caption); empty when the last token's
      first occurrence precedes the first's. ``char_span`` is not used. An empty phrase or a sub-token missing from
      the caption raised in the original (reasons ``raised:empty_phrase``, ``raised:token_not_found``).
    - corrected: from the character offsets ``char_span = (start, end)`` of the phrase in the caption (authoritative:
      the data reader may have matched it ignoring case or spacing; out of range -> ``char_span_invalid``); the phrase
      covers tokens ``[len(encode(caption[:start])), len(encode(caption[:end])))``.
      The tokenizer splits the text into words/punctuation runs before BPE, so counting a prefix is exact when the
      offset falls on a token boundary; that is checked (the prefix's tokens must be a prefix of the caption's
      tokens), otherwise ``span_not_on_token_boundary``. An utterance with no token: ``empty_phrase``.
    """
    _check_mode(mode)
    tokenizer = tokenizer or default_tokenizer()
    tokens = list(tokenizer.encode(caption))
    labels = np.zeros(len(tokens), dtype=bool)
    if mode == "faithful":
        phrase = list(tokenizer.encode(utterance))
        if not phrase:
            raise ExcludedEntry("raised:empty_phrase")
        decoded = [tokenizer.decode([t]) for t in tokens]
        try:
            first = decoded.index(tokenizer.decode([phrase[0]]))
            last = decoded.index(tokenizer.decode([phrase[-1]]))
        except ValueError:
            raise ExcludedEntry("raised:token_not_found") from None
        labels[first:last + 1] = True
        return tokens, labels

    start, end = (int(x) for x in char_span)
    if not 0 <= start <= end <= len(caption):
        raise ExcludedEntry("char_span_invalid")
    before = list(tokenizer.encode(caption[:start]))
    through = list(tokenizer.encode(caption[:end]))
    if tokens[:len(before)] != before or tokens[:len(through)] != through:
        raise ExcludedEntry("span_not_on_token_boundary")
    if len(through) == len(before):
        raise ExcludedEntry("empty_phrase")
    labels[len(before):len(through)] = True
    return tokens, labels

