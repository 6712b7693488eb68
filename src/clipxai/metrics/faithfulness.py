"""Faithfulness of relevance maps: does what a map ranks first matter most to the model's image-text similarity?

Plausibility (IoU against a human mask) asks whether a map looks right; these perturbation tests ask whether the
model uses what the map points at. Each curve records the cosine similarity of an (image, text) pair as parts of
one side are removed or revealed in order of relevance, in ``steps`` equal steps of the part count:

* ``deletion`` (Petsiuk et al. 2018), the same order as Chefer et al.'s *positive perturbation*: the most relevant
  parts removed first. A faithful map makes the similarity fall fast: lower area is better.
* ``negative`` (Chefer et al.'s *negative perturbation*): the least relevant parts removed first. The similarity
  should hold: higher area is better.
* ``insertion`` (Petsiuk et al.): start from everything removed and reveal the most relevant parts first: the
  similarity should rise fast: higher area is better.

Image side: the parts are the cells of the model's patch grid; a removed cell takes its pixels from a baseline image
(``mean``: the image's mean colour; ``blur``: a Gaussian blur of the image, sigma = one patch side). Text side: the
parts are the caption tokens (strictly between the start and the end token), removed by setting them to padding
(token id 0); the start and end tokens stay. At step k, ``floor(k * n / steps + 1/2)`` parts are removed, so step 0
is the unperturbed pair and step ``steps`` has every part removed. Ties in relevance go in position order.

Insertion and negative perturbation visit the same inputs in opposite order (revealing the top fraction f is
removing the bottom 1 - f), so with one baseline their areas agree up to the rounding of the step counts and the
order of tied parts; both are kept because both papers' tables report them.

The other side's embedding is computed once; each step is one forward of the perturbed side for the whole batch,
and the two ends (nothing removed, everything removed) are shared by the three curves: ``2 + 3 * (steps - 1)``
forwards of the perturbed tower per batch for all three curves.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

CURVES: tuple[str, ...] = ("deletion", "insertion", "negative")
# which parts go first, and whether a step removes (deletion-type) or reveals (insertion) them
_ORDER = {"deletion": "positive", "insertion": "positive", "negative": "negative"}
BASELINES: tuple[str, ...] = ("mean", "blur")
PAD_TOKEN = 0
# higher is better for these curves' areas; lower for deletion
HIGHER_IS_BETTER = {"deletion": False, "insertion": True, "negative": True}


def removal_counts(n: int | torch.Tensor, steps: int) -> list:
    """Parts removed (or revealed) at each step 0..steps: floor(k * n / steps + 1/2); ``n`` may be a tensor [B]."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if isinstance(n, torch.Tensor):
        return [torch.floor(n.double() * k / steps + 0.5).long() for k in range(steps + 1)]
    return [int(math.floor(n * k / steps + 0.5)) for k in range(steps + 1)]


def rank_positions(relevance: torch.Tensor, order: str = "positive", valid: torch.Tensor | None = None) -> torch.Tensor:
    """[B, N] relevance -> [B, N] rank of each part in the removal order (0 = removed first).

    ``positive``: most relevant first; ``negative``: least relevant first; ties in position order. Parts outside
    ``valid`` (bool [B, N]) rank after every valid part, so they are never reached by a count of valid parts.
    """
    if order not in ("positive", "negative"):
        raise ValueError(f"order must be 'positive' or 'negative', got {order!r}")
    keys = relevance.double().clone()
    keys = torch.nan_to_num(keys, nan=0.0)
    if order == "positive":
        keys = -keys
    if valid is not None:
        keys = torch.where(valid, keys, torch.full_like(keys, math.inf))
    ordering = torch.argsort(keys, dim=-1, stable=True)
    ranks = torch.empty_like(ordering)
    positions = torch.arange(keys.shape[-1], device=keys.device).expand_as(ordering)
    ranks.scatter_(-1, ordering, positions)
    return ranks


def image_baseline(images: torch.Tensor, kind: str = "mean", sigma: float = 1.0) -> torch.Tensor:
    """What a removed patch shows: ``mean`` = each image's mean colour; ``blur`` = a Gaussian blur (``sigma`` px)."""
    if kind == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()
    if kind == "blur":
        radius = max(1, int(math.ceil(3 * sigma)))
        x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
        kernel = torch.exp(-0.5 * (x / sigma) ** 2)
        kernel = kernel / kernel.sum()
        channels = images.shape[1]
        out = F.pad(images, (radius, radius, 0, 0), mode="replicate")
        out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
        out = F.pad(out, (0, 0, radius, radius), mode="replicate")
        return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {kind!r}")


def _patch_side(model) -> tuple[int, int]:
    gh, gw = model.grid
    return model.image_size // gh, model.image_size // gw


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=-1)


def image_curves(model, images: torch.Tensor, texts: torch.Tensor, relevance: torch.Tensor, steps: int = 10,
                 baseline: str = "mean", curves: Sequence[str] = CURVES,
                 text_embeddings: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """Image-side curves: {curve: float64 [B, steps + 1]} of cos(image perturbed, text) per step.

    ``model``: a LoadedModel (``model.model.encode_image / encode_text``, ``grid``, ``image_size``); ``images``
    [B, 3, H, W] preprocessed; ``texts`` [B, ctx] tokens (or ``text_embeddings`` [B, D] instead); ``relevance``
    [B, gh, gw] (any scale; only its order counts).
    """
    _check_curves(curves)
    clip = model.model
    gh, gw = model.grid
    ph, pw = _patch_side(model)
    device = images.device
    relevance = torch.as_tensor(relevance).to(device)
    if relevance.dim() != 3 or tuple(relevance.shape) != (images.shape[0], gh, gw):
        raise ValueError(f"relevance must be [B, {gh}, {gw}] for {images.shape[0]} images, got "
                         f"{tuple(relevance.shape)}")
    with torch.no_grad():
        target = _unit(text_embeddings if text_embeddings is not None else clip.encode_text(texts)).to(device)
        base = image_baseline(images, baseline, sigma=float(max(ph, pw)))

        def score(x: torch.Tensor) -> torch.Tensor:
            return (_unit(clip.encode_image(x)) * target).sum(dim=-1).double().cpu()

        ends = {"none": score(images), "all": score(base)}
        counts = removal_counts(gh * gw, steps)
        flat = relevance.reshape(relevance.shape[0], -1)
        out = {}
        for curve in curves:
            ranks = rank_positions(flat, _ORDER[curve])
            values = []
            for k in range(steps + 1):
                if k in (0, steps):
                    removed_none = (k == 0) != (curve == "insertion")
                    values.append(ends["none" if removed_none else "all"])
                    continue
                chosen = ranks < counts[k]  # the first counts[k] parts in the order
                keep = ~chosen if curve != "insertion" else chosen
                pixels = keep.reshape(-1, 1, gh, gw).to(images.dtype)
                pixels = pixels.repeat_interleave(ph, dim=2).repeat_interleave(pw, dim=3)
                values.append(score(images * pixels + base * (1 - pixels)))
            out[curve] = torch.stack(values, dim=1).numpy()
    return out


def text_curves(model, images: torch.Tensor, texts: torch.Tensor, relevance: torch.Tensor, steps: int = 10,
                curves: Sequence[str] = CURVES, image_embeddings: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """Text-side curves: {curve: float64 [B, steps + 1]} of cos(image, text perturbed) per step.

    ``relevance`` [B, ctx] aligned with token positions (NaN outside the caption is fine); caption tokens are those
    strictly between the start token and the end token (the largest id). Removed tokens become padding (id 0).
    """
    _check_curves(curves)
    clip = model.model
    texts = texts.long()
    device = texts.device
    relevance = torch.as_tensor(relevance).to(device)
    if tuple(relevance.shape) != tuple(texts.shape):
        raise ValueError(f"relevance must be [B, ctx] like the tokens {tuple(texts.shape)}, got "
                         f"{tuple(relevance.shape)}")
    positions = torch.arange(texts.shape[1], device=device)
    caption = (positions[None, :] >= 1) & (positions[None, :] < texts.argmax(dim=-1)[:, None])
    n_caption = caption.sum(dim=1)
    with torch.no_grad():
        target = _unit(image_embeddings if image_embeddings is not None else clip.encode_image(images)).to(device)

        def score(tokens: torch.Tensor) -> torch.Tensor:
            return (_unit(clip.encode_text(tokens)) * target).sum(dim=-1).double().cpu()

        masked_all = torch.where(caption, torch.full_like(texts, PAD_TOKEN), texts)
        ends = {"none": score(texts), "all": score(masked_all)}
        counts = removal_counts(n_caption, steps)
        out = {}
        for curve in curves:
            ranks = rank_positions(relevance, _ORDER[curve], valid=caption)
            values = []
            for k in range(steps + 1):
                if k in (0, steps):
                    removed_none = (k == 0) != (curve == "insertion")
                    values.append(ends["none" if removed_none else "all"])
                    continue
                chosen = caption & (ranks < counts[k][:, None])
                masked = (caption & ~chosen) if curve == "insertion" else chosen
                values.append(score(torch.where(masked, torch.full_like(texts, PAD_TOKEN), texts)))
            out[curve] = torch.stack(values, dim=1).numpy()
    return out


def _check_curves(curves: Sequence[str]) -> None:
    unknown = [c for c in curves if c not in CURVES]
    if unknown:
        raise ValueError(f"unknown curve {unknown[0]!r}; known: {', '.join(CURVES)}")


def auc(curve: np.ndarray) -> np.ndarray:
    """Area under curves [..., steps + 1] sampled at fractions 0, 1/steps, ..., 1 (trapezoids): [...]."""
    curve = np.asarray(curve, dtype=np.float64)
    steps = curve.shape[-1] - 1
    if steps < 1:
        raise ValueError("a curve needs at least two points")
    return (curve[..., 1:] + curve[..., :-1]).sum(axis=-1) / (2 * steps)


# ---- one curve at a time, for users scoring their own maps ----

def deletion_curve(model, images, texts, relevance, steps: int = 10, baseline: str = "mean") -> np.ndarray:
    """Image patches removed most relevant first (= positive perturbation): cosine similarity [B, steps + 1]."""
    return image_curves(model, images, texts, relevance, steps, baseline, curves=("deletion",))["deletion"]


def insertion_curve(model, images, texts, relevance, steps: int = 10, baseline: str = "mean") -> np.ndarray:
    """Image patches revealed onto the baseline most relevant first: cosine similarity [B, steps + 1]."""
    return image_curves(model, images, texts, relevance, steps, baseline, curves=("insertion",))["insertion"]


def positive_perturbation_curve(model, images, texts, relevance, steps: int = 10,
                                baseline: str = "mean") -> np.ndarray:
    """Chefer et al.'s positive perturbation: the deletion order (most relevant patches removed first)."""
    return deletion_curve(model, images, texts, relevance, steps, baseline)


def negative_perturbation_curve(model, images, texts, relevance, steps: int = 10,
                                baseline: str = "mean") -> np.ndarray:
    """Chefer et al.'s negative perturbation: least relevant patches removed first [B, steps + 1]."""
    return image_curves(model, images, texts, relevance, steps, baseline, curves=("negative",))["negative"]


def text_deletion_curve(model, images, texts, relevance, steps: int = 10) -> np.ndarray:
    """Caption tokens masked to padding most relevant first: cosine similarity [B, steps + 1]."""
    return text_curves(model, images, texts, relevance, steps, curves=("deletion",))["deletion"]


def text_insertion_curve(model, images, texts, relevance, steps: int = 10) -> np.ndarray:
    """Caption tokens revealed (from all padding) most relevant first: cosine similarity [B, steps + 1]."""
    return text_curves(model, images, texts, relevance, steps, curves=("insertion",))["insertion"]


def text_negative_perturbation_curve(model, images, texts, relevance, steps: int = 10) -> np.ndarray:
    """Caption tokens masked to padding least relevant first: cosine similarity [B, steps + 1]."""
    return text_curves(model, images, texts, relevance, steps, curves=("negative",))["negative"]
