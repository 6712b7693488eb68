"""Zero-shot classification of an ImageNet-format validation set (the ``zeroshot`` verb's protocol).

Classifier: per class the mean over templates of the normalised text embeddings of its prompts, renormalised
(:func:`clipxai.models.zeroshot.classifier`); image embeddings normalised; top-1 / top-5 of their dot products with
a bootstrap 95% interval over images. A copy with fewer images than the complete split, or fewer templates than the
chosen set, is scored as a partial run (``complete`` false).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clipxai.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class ZeroshotSplit:
    """What is scored: the opened set, its class names and prompt templates, the images (path, class index)."""

    dataset: object
    names: list[str]
    templates_choice: str  # "openai" or "given"
    templates: list
    n_templates_all: int  # before --max-templates
    samples: list[tuple[Path, int]]
    n_split_images: int  # images of the complete split


@dataclass
class ZeroshotResult:
    """The summary row and the per-image scores [N, C] behind it."""

    row: dict
    scores: np.ndarray
    labels: np.ndarray
    split: ZeroshotSplit

    def predictions(self) -> dict[str, np.ndarray]:
        """The per-image arrays: image_path, label, top5 (class indices, best first), class_names."""
        order = np.argsort(-self.scores, axis=1, kind="stable")[:, :5]
        return {"image_path": np.array([str(p) for p, _ in self.split.samples]), "label": self.labels,
                "top5": order.astype(np.int32), "class_names": np.array(self.split.names)}


class _Images(torch.utils.data.Dataset):
    def __init__(self, samples: list[tuple[Path, int]], preprocess):
        self.samples, self.preprocess = samples, preprocess

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        from clipxai.data.images import read_image

        path, label = self.samples[index]
        return self.preprocess(read_image(path, what="image").convert("RGB")), label


def class_names_for(dataset, choice: str) -> list[str]:
    """The class names in the data set's class-index order."""
    if choice == "imagenet":
        from clipxai.models.zeroshot import imagenet_classnames

        names = imagenet_classnames()
        if len(dataset.wnids) != len(names):
            raise InputError(dataset.root, "classes", f"the {len(names)} ImageNet classes for --classnames imagenet,"
                             f" found {len(dataset.wnids)} (use --classnames dataset for other sets)")
        return names
    if len(dataset.class_names) != len(dataset.wnids):
        raise InputError(dataset.root, "classnames.txt", "one readable name per class (or the devkit's meta.mat) "
                         "for --classnames dataset")
    return list(dataset.class_names)


def templates_for(choice: str, given: list[str]) -> list:
    """OpenAI's 80 templates (``choice`` "openai") or the ``given`` ones, each with {} for the class name."""
    from clipxai.models.zeroshot import openai_templates

    if choice == "openai":
        if given:
            raise InputError("--template", "template", "no --template with --templates openai")
        return openai_templates()
    if not given:
        raise InputError("--template", "template", "at least one template with --templates given")
    for template in given:
        if "{}" not in template:
            raise InputError("--template", "template", f"a template with {{}} for the class name, got {template!r}")
    return list(given)


@torch.no_grad()
def image_logits(model, samples: list[tuple[Path, int]], weights: torch.Tensor, batch_size: int, workers: int,
                 progress: bool) -> torch.Tensor:
    """Cosine similarities [N, C] of each image embedding with each class (float32, CPU)."""
    from tqdm import tqdm

    loader = torch.utils.data.DataLoader(_Images(samples, model.preprocess), batch_size=batch_size,
                                         num_workers=workers, shuffle=False)
    chunks = []
    for images, _ in tqdm(loader, desc="zero-shot", unit="batch", disable=not progress):
        features = F.normalize(model.model.encode_image(images.to(model.device)).float(), dim=-1)
        chunks.append((features @ weights.float()).cpu())
    return torch.cat(chunks)


def split_images(given: int | None, classnames: str, expected_images: int, verify: bool, dataset) -> int:
    """The images of the complete split: a copy with fewer (a subset, a rehearsal) is scored as a partial run."""
    from clipxai.data import imagenet

    if given is not None:
        return given
    if classnames == "imagenet":
        return imagenet.N_VAL_IMAGES
    return expected_images if verify else len(dataset.samples)


def open_split(data, devkit, *, classnames: str, templates: str, template: list[str], max_templates: int = 0,
               max_images: int = 0, verify: bool = False, expected_images: int = 50_000,
               expected_classes: int = 1000, require_wnids: bool = True, n_split_images: int | None = None
               ) -> ZeroshotSplit:
    """The validation folder (with ``verify``: refused unless complete, :func:`clipxai.data.imagenet.verify`), its
    class names, templates and the images to score; everything checked before a model is loaded."""
    from clipxai.data import imagenet

    if verify:
        problems = imagenet.verify(data, devkit, expected_images=expected_images, expected_classes=expected_classes,
                                   require_wnids=require_wnids)
        if problems:
            for problem in problems:
                log.error("%s", problem)
            raise InputError(data, "contents", f"a complete validation set ({len(problems)} problems, first: "
                             f"{problems[0]})")
    dataset = imagenet.load(data, devkit)
    names = class_names_for(dataset, classnames)
    chosen = templates_for(templates, template)
    n_templates_all = len(chosen)
    chosen = chosen[:max_templates] if max_templates else chosen
    samples = dataset.samples[:max_images] if max_images else dataset.samples
    if not samples:
        raise InputError(data, "images", "at least one image")
    return ZeroshotSplit(dataset, names, templates, chosen, n_templates_all, samples,
                         split_images(n_split_images, classnames, expected_images, verify, dataset))


def evaluate(model, split: ZeroshotSplit, *, dataset_name: str, model_name: str, batch_size: int = 64,
             workers: int = 0, progress: bool = True, seed: int = 0, n_resamples: int = 1000) -> ZeroshotResult:
    """Top-1 / top-5 of ``model`` on ``split`` with their bootstrap 95% intervals: the summary row of the table."""
    from clipxai.metrics.bootstrap import ci
    from clipxai.metrics.classification import topk_correct
    from clipxai.models.zeroshot import classifier

    weights = classifier(model.model, model.tokenizer, split.names, split.templates)
    logits = image_logits(model, split.samples, weights, batch_size, workers, progress)
    labels = np.array([label for _, label in split.samples], dtype=np.int64)
    scores = logits.numpy()
    row = {"dataset": dataset_name, "model": model_name, "n_images": len(split.samples),
           "n_split_images": split.n_split_images, "n_classes": len(split.names), "n_templates": len(split.templates),
           "templates": split.templates_choice if split.templates_choice == "openai" else " | ".join(split.templates)}
    for k in (1, 5):
        correct = topk_correct(scores, labels, k).astype(np.float64)
        mean, lo, hi = ci(correct, seed, n_resamples, keys=(row["dataset"], row["model"], f"top{k}"))
        row.update({f"top{k}": mean, f"top{k}_lo": lo, f"top{k}_hi": hi})
    row.update({"chance_top1": 1.0 / len(split.names),
                "complete": bool(row["n_images"] >= row["n_split_images"]
                                 and len(split.templates) == split.n_templates_all)})
    return ZeroshotResult(row, scores, labels, split)
