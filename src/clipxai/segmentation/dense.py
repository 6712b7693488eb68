"""Dense patch-text segmentation, CLIPpy's protocol (docs/protocols.md E), for any CLIP whose tokens reach the joint
space: per-patch L2-normalised features, one normalised text embedding per class prompt, patch-class similarities
bilinearly upsampled to the label size, argmax, then every prompt class beyond the label set becomes background.

Facts from the replication's evaluation (kahnchana/clippy ``src/evaluation``):

* 60 prompt classes (:data:`VOC_EXTENDED_CLASSES`): the 21 VOC classes in its wording ("table", "television
  monitor", ...; "background" is itself a prompt) followed by 39 context classes ("sky", "wall", ...); predictions
  ``>= 21`` are mapped to background (0).
* one prompt per class, lower-cased: "a photo of an {c}" when the name starts with a vowel letter, else
  "a photo of a {c}".
* features are normalised per patch, upsampled (bilinear, ``align_corners=False``) and then dotted with the text
  embeddings; upsampling is linear, so upsampling the similarities instead gives the same argmax.
* image: the model's eval transform (resize shorter side, centre crop); label: ``Resize((S, S))`` of the palette PNG,
  which PIL performs with nearest neighbour, i.e. the whole label is squashed to the crop size while the image was
  cropped: for non-square images label and prediction are misaligned. That is the **faithful** alignment here; the
  **corrected** one puts the label through the image's own resize and centre crop (nearest neighbour), so the two
  line up and only the labelled pixels the model sees are scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from clipxai.errors import InputError
from clipxai.metrics.maps import bilinear
from clipxai.metrics.segmentation import ConfusionAccumulator

VOC_EXTENDED_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "table",
    "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa", "train", "television monitor",
    "bag", "bed", "bench", "book", "building", "cabinet", "ceiling", "cloth", "computer", "cup", "door", "fence",
    "floor", "flower", "food", "grass", "ground", "keyboard", "light", "mountain", "mouse", "curtain", "platform",
    "sign", "plate", "road", "rock", "shelves", "sidewalk", "sky", "snow", "bedclothes", "track", "tree", "truck",
    "wall", "water", "window", "wood")
N_VOC_CLASSES = 21
BACKGROUND = 0
ALIGNMENTS = ("faithful", "corrected")
CLIPPY_PROMPT = "clippy"  # the replication's "a photo of a/an {c}"


def clippy_prompt(name: str) -> str:
    """The replication's prompt: lower-cased name, "an" before a vowel letter (a, e, i, o, u), else "a"."""
    name = name.lower()
    return f"a photo of an {name}" if name.startswith(tuple("aeiou")) else f"a photo of a {name}"


def class_prompts(names: Sequence[str], template: str = CLIPPY_PROMPT) -> list[str]:
    """One prompt per class: ``template="clippy"`` (:func:`clippy_prompt`) or a ``str.format`` template with ``{}``."""
    if template == CLIPPY_PROMPT:
        return [clippy_prompt(n) for n in names]
    if "{}" not in template:
        raise InputError("--prompt", "template", f'"clippy" or a template with {{}}, got {template!r}')
    return [template.format(n) for n in names]


def collapse_to_label_classes(pred: torch.Tensor | np.ndarray, n_label_classes: int,
                              background: int = BACKGROUND):
    """Prompt-class predictions -> label classes: every class index ``>= n_label_classes`` becomes ``background``."""
    if isinstance(pred, torch.Tensor):
        return torch.where(pred >= n_label_classes, torch.full_like(pred, background), pred)
    pred = np.asarray(pred)
    return np.where(pred >= n_label_classes, np.asarray(background, dtype=pred.dtype), pred)


# --------------------------------------------------------------------------------------------------- features


def patch_features(model, images: torch.Tensor) -> torch.Tensor:
    """L2-normalised per-patch features [B, gh*gw, D] in the space the image embedding lives in.

    open_clip ViT towers: every patch token through ``ln_post`` and ``proj`` (:mod:`clipxai.attribution.dense`).
    timm towers (CLIPpy): the trunk's normalised output tokens without the prefix (class) tokens, through the
    adapter's projection when it has one; towers that pool with attention have no per-patch embedding.
    """
    visual = model.model.visual
    if hasattr(visual, "trunk"):  # open_clip TimmModel
        trunk = visual.trunk
        if not hasattr(trunk, "forward_features") or not hasattr(trunk, "num_prefix_tokens"):
            raise InputError(model.name, "image tower", "a timm ViT (tokens with a num_prefix_tokens prefix)")
        if any(name not in ("drop", "proj") for name, _ in visual.head.named_children()):
            raise InputError(model.name, "image tower", "a head of dropout/linear projection only (attention "
                             "pooling has no per-patch output)")
        tokens = trunk.forward_features(images)[:, trunk.num_prefix_tokens:]
        if hasattr(visual.head, "proj"):
            tokens = visual.head.proj(tokens)
        return F.normalize(tokens.float(), dim=-1)
    from clipxai.attribution.base import NotApplicableError
    from clipxai.attribution.dense import patch_embeddings

    if not getattr(model, "is_vit", False):
        raise InputError(model.name, "image tower", "a ViT (ResNet towers have no per-patch joint-space features)")
    try:
        return patch_embeddings(model, images).float()
    except NotApplicableError as err:
        raise InputError(model.name, "image tower", str(err)) from None


def similarity_maps(features: torch.Tensor, grid: tuple[int, int], text: torch.Tensor,
                    size: tuple[int, int]) -> torch.Tensor:
    """Patch-class cosine similarities [B, C, H, W]: ``features`` [B, gh*gw, D] (normalised) dot ``text`` [C, D]
    (normalised), on the patch grid, then bilinearly upsampled (``align_corners=False``) to ``size``."""
    batch, n_patches, _ = features.shape
    if n_patches != grid[0] * grid[1]:
        raise ValueError(f"{n_patches} patch features do not fill a {grid[0]}x{grid[1]} grid")
    scores = torch.einsum("bpd,cd->bcp", features, text.to(features.dtype)).reshape(batch, -1, *grid)
    return bilinear(scores, size)


def predict(features: torch.Tensor, grid: tuple[int, int], text: torch.Tensor, size: tuple[int, int],
            n_label_classes: int) -> torch.Tensor:
    """Label-class prediction [B, H, W] (int64): argmax over prompt classes, extra classes -> background."""
    return collapse_to_label_classes(similarity_maps(features, grid, text, size).argmax(dim=1), n_label_classes)


# ------------------------------------------------------------------------------------------------ label geometry


def _geometric_steps(preprocess) -> list:
    """The resize / centre-crop steps of a torchvision eval transform, in order (others are photometric)."""
    steps = getattr(preprocess, "transforms", None)
    if steps is None:
        raise InputError("preprocess", "transforms", "a torchvision Compose (the model's open_clip transform)")
    geometric = []
    for step in steps:
        if isinstance(step, (T.Resize, T.CenterCrop)):
            geometric.append(step)
        elif type(step).__name__ in ("ResizeKeepRatio", "CenterCropOrPad", "RandomResizedCrop", "ResizeMaxSize"):
            raise InputError("preprocess", type(step).__name__, "Resize and CenterCrop steps only (the label must "
                             "follow the image's geometry)")
    return geometric


def align_label(label: np.ndarray, alignment: str, preprocess, size: int) -> np.ndarray:
    """The label [H, W] (uint8 class indices, 255 void) brought to the prediction's ``size`` x ``size`` grid.

    faithful: squashed to ``(size, size)`` with nearest neighbour (the replication's ``Resize((224, 224))`` of a
    palette image). corrected: the image transform's own resize and centre crop, with nearest neighbour.
    """
    image = Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8), mode="L")
    if alignment == "faithful":
        out = image.resize((size, size), Image.Resampling.NEAREST)
    elif alignment == "corrected":
        out = image
        for step in _geometric_steps(preprocess):
            if isinstance(step, T.Resize):
                out = T.Resize(step.size, interpolation=T.InterpolationMode.NEAREST, max_size=step.max_size)(out)
            else:
                out = step(out)
    else:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    aligned = np.array(out, dtype=np.uint8)  # a writable copy (torch.from_numpy warns on read-only arrays)
    if aligned.shape != (size, size):
        raise InputError("preprocess", "geometry", f"an eval transform ending in a {size}x{size} image, got "
                         f"{aligned.shape[1]}x{aligned.shape[0]}")
    return aligned


# ------------------------------------------------------------------------------------------------- evaluation


@dataclass
class Example:
    """One evaluated image, kept for figures: the model's input (denormalised, uint8 [S, S, 3]), its labels and the
    prediction on the same grid."""

    image_id: str
    image: np.ndarray
    label: dict[str, np.ndarray]  # alignment -> uint8 [S, S]
    prediction: np.ndarray        # uint8 [S, S] (label classes)


@dataclass
class SegmentationResult:
    accumulators: dict[str, ConfusionAccumulator]  # alignment -> confusion over label classes, summed
    per_image: dict[str, np.ndarray]                # alignment -> int64 [N, C, C], one confusion per image
    n_images: int
    prompts: list[str]
    examples: list[Example]


def miou_interval(per_image: np.ndarray, absent: str, seed: int, n_resamples: int = 1000, level: float = 0.95,
                  keys: tuple = ()) -> tuple[float, float]:
    """Percentile-bootstrap interval of the data-set mIoU: images resampled with replacement, their confusion
    matrices summed, mIoU recomputed (:class:`ConfusionAccumulator`, the same ``absent`` rule). Draws come from
    ``clipxai.seeding.rng(seed, "bootstrap", *keys)``."""
    from clipxai.seeding import rng

    n_images, n_classes, _ = per_image.shape
    if n_images == 0:
        return float("nan"), float("nan")
    generator = rng(seed, "bootstrap", *keys)
    flat = per_image.reshape(n_images, -1).astype(np.float64)
    values = np.empty(n_resamples)
    block = max(1, (1 << 22) // n_images)  # resample weights drawn in blocks: memory stays bounded
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        draws = generator.integers(0, n_images, size=(stop - start, n_images))
        weights = np.stack([np.bincount(row, minlength=n_images) for row in draws]).astype(np.float64)
        for offset, summed in enumerate(weights @ flat):
            accumulator = ConfusionAccumulator(n_classes)
            accumulator.confusion = np.rint(summed).astype(np.int64).reshape(n_classes, n_classes)
            values[start + offset] = accumulator.result(absent=absent)["miou"]
    lo, hi = np.nanquantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _denormalise(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    pixels = image.float().cpu() * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


class _AlignedVOC(torch.utils.data.Dataset):
    """(preprocessed image, {alignment: aligned label}) of a VOC split, for a DataLoader."""

    def __init__(self, dataset, preprocess: Callable, size: int, alignments: Sequence[str], limit: int | None):
        self.dataset, self.preprocess, self.size, self.alignments = dataset, preprocess, size, tuple(alignments)
        self.length = len(dataset) if not limit else min(limit, len(dataset))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        image_id, rgb, label = self.dataset[index]
        image = self.preprocess(Image.fromarray(rgb))
        labels = {a: torch.from_numpy(align_label(label, a, self.preprocess, self.size)) for a in self.alignments}
        return index, image, labels


def text_embeddings(model, prompts: Sequence[str]) -> torch.Tensor:
    """Normalised text embeddings [C, D] of the class prompts (one prompt per class)."""
    from clipxai.models.zeroshot import text_embeddings as encode

    return encode(model.model, model.tokenizer, list(prompts))


@torch.no_grad()
def evaluate(model, dataset, class_names: Sequence[str], *, prompt: str = CLIPPY_PROMPT,
             alignments: Iterable[str] = ALIGNMENTS, batch_size: int = 32, workers: int = 0,
             max_images: int | None = None, n_examples: int = 0, progress: bool = True) -> SegmentationResult:
    """Segment every image of ``dataset`` (a :class:`clipxai.data.voc.VOCSegmentation`) with ``class_names`` as
    prompt classes (the first ``len(dataset.class_names)`` must be the label classes, in label order) and
    accumulate one confusion matrix per alignment over the label classes (255 ignored)."""
    from tqdm import tqdm

    alignments = tuple(alignments)
    for alignment in alignments:
        if alignment not in ALIGNMENTS:
            raise InputError("--alignments", "alignment", f"one of {', '.join(ALIGNMENTS)}, not {alignment!r}")
    n_label = len(dataset.class_names)
    if len(class_names) < n_label:
        raise InputError("--classes", "classes", f"at least the data set's {n_label} label classes, got "
                         f"{len(class_names)}")
    prompts = class_prompts(class_names, prompt)
    text = text_embeddings(model, prompts)
    size = model.image_size
    loader = torch.utils.data.DataLoader(_AlignedVOC(dataset, model.preprocess, size, alignments, max_images),
                                         batch_size=batch_size, num_workers=workers, shuffle=False)
    per_image: dict[str, list[np.ndarray]] = {a: [] for a in alignments}
    examples: list[Example] = []
    n_images = 0
    for indices, images, labels in tqdm(loader, desc="segment", unit="batch", disable=not progress):
        features = patch_features(model, images.to(model.device))
        pred = predict(features, model.grid, text, (size, size), n_label).cpu().numpy()
        for alignment in alignments:
            label = labels[alignment].numpy()
            for row in range(len(indices)):
                per_image[alignment].append(
                    ConfusionAccumulator(n_label, ignore_index=255).update(pred[row], label[row]).confusion)
        n_images += len(indices)
        for row in range(len(indices)):
            if len(examples) >= n_examples:
                break
            examples.append(Example(image_id=dataset.ids[int(indices[row])],
                                    image=_denormalise(images[row], model.mean, model.std),
                                    label={a: labels[a][row].numpy() for a in alignments},
                                    prediction=pred[row].astype(np.uint8)))
    if n_images == 0:
        raise InputError(dataset.root, f"{dataset.split} split", "at least one image")
    stacked = {a: np.stack(per_image[a]) for a in alignments}
    accumulators = {}
    for alignment in alignments:
        accumulators[alignment] = ConfusionAccumulator(n_label, ignore_index=255)
        accumulators[alignment].confusion = stacked[alignment].sum(axis=0)
    return SegmentationResult(accumulators=accumulators, per_image=stacked, n_images=n_images, prompts=prompts,
                              examples=examples)
