"""The ImageNet-segmentation protocol of the TextSpan paper (PROTOCOLS.md D), for the decomposition and for every
attribution method that gives image maps.

Images are resized to the model's square input (no crop) and their masks resized the same way (nearest). The
decomposition's map: per-patch contributions summed over every layer and head, scored by the zero-shot classifier,
the predicted class minus the mean over classes (``clipxai.models.decompose.class_maps``). An attribution method
explains the same predicted class: its text is that class's prompt ("a photo of a {class}." for the papers'
models). Every map is kept at patch-grid resolution; scoring upsamples it (bilinear) to the input size, clamps it
at 0, min-max normalises it, predicts foreground where it exceeds its mean, and accumulates pixAcc and two-class
mIoU over the data set and AP per image (clipxai.metrics.segmentation).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from clipxai.metrics.segmentation import BinarySegmentationAccumulator, minmax_relevance

DECOMPOSITION = "decomposition"  # the registry-free method name of the TextSpan map


@torch.no_grad()
def predicted_classes(loaded, images: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    """Zero-shot predictions [B] (argmax of normalised image embedding @ classifier)."""
    embedding = F.normalize(loaded.model.encode_image(images.to(loaded.device)).float(), dim=-1)
    return (embedding @ classifier.to(embedding.device)).argmax(-1).cpu()


def decomposition_maps(loaded, images: torch.Tensor, classifier: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """TextSpan maps [B, gh, gw] at patch-grid resolution and the predicted classes [B]."""
    from clipxai.models.decompose import class_maps, decompose, patch_terms, tower_shape

    layers = tuple(range(tower_shape(loaded.model)["layers"]))
    parts = decompose(loaded.model, images.to(loaded.device), spatial_layers=layers)
    maps, predicted = class_maps(patch_terms(parts.spatial), classifier.to(parts.spatial.device), parts.embedding,
                                 loaded.grid)
    return maps.cpu().numpy().astype(np.float32), predicted.cpu().numpy().astype(np.int64)


def attribution_maps(method, loaded, images: torch.Tensor, classifier: torch.Tensor, classnames: Sequence[str],
                     prompt: str) -> tuple[np.ndarray, np.ndarray]:
    """Maps [B, gh, gw] of a registry method explaining each image's predicted class, and those classes [B]."""
    predicted = predicted_classes(loaded, images, classifier)
    tokens = loaded.tokenizer([prompt.format(classnames[int(c)]) for c in predicted])
    result = method.attribute(loaded, images.to(loaded.device), tokens.to(loaded.device))
    if result.image is None:
        raise ValueError(f"method {method.name} gives no image maps")
    return result.image.detach().float().cpu().numpy(), predicted.numpy().astype(np.int64)


def upsampled(grid: np.ndarray, size: int) -> np.ndarray:
    """One grid map [gh, gw] -> [size, size]: bilinear, clamped at 0, min-max normalised (the protocol's map)."""
    tensor = torch.as_tensor(np.asarray(grid, dtype=np.float32))[None, None]
    big = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()
    return minmax_relevance(big)


def score(grids: Iterable[np.ndarray], masks: Iterable[np.ndarray], size: int) -> dict:
    """pixAcc, mIoU (two classes, accumulated over the set), mAP (mean over images) of grid maps against binary
    masks already at ``size`` x ``size``."""
    accumulator = BinarySegmentationAccumulator()
    for grid, mask in zip(grids, masks, strict=True):
        accumulator.update(upsampled(grid, size), mask)
    return accumulator.result()
