"""``clipxai zeroshot``: zero-shot classification of an ImageNet-format validation set, any model.

Classifier: per class the mean over templates of the normalised text embeddings of its prompts, renormalised
(:func:`clipxai.models.zeroshot.classifier`); image embeddings normalised; top-1 / top-5 of their dot products.
Real ImageNet: open_clip's 1,000 class names and OpenAI's 80 templates (``--classnames imagenet --templates openai``,
the defaults; CLIPpy's evaluation used the same). The embedded shapes set: its ``classnames.txt`` ("red circle") with
the prompt "a {}" (``--classnames dataset --template "a {}"``).

``--verify`` checks the folder first (:func:`clipxai.data.imagenet.verify`: every expected image and class present)
and refuses to score an incomplete copy: the user's ImageNet is never downloaded, only checked.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from clipxai.errors import InputError
from clipxai.io import save_npz, write_csv
from clipxai.commands import _args
from clipxai.commands._zeroshot_model import add_model_arguments, load_for_args

NAME = "zeroshot"
HELP = "zero-shot top-1/top-5 accuracy of a model on an ImageNet-format validation folder"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="validation folder: class folders, or flat "
                        "ILSVRC2012_val_*.JPEG with the devkit")
    parser.add_argument("--devkit", default=None, help="ILSVRC2012_devkit_t12 folder (default: looked for beside "
                        "--data)")
    parser.add_argument("--classnames", choices=("imagenet", "dataset"), default="imagenet",
                        help="imagenet: open_clip's 1,000 ImageNet names (default); dataset: the folder's "
                        "classnames.txt / devkit words")
    parser.add_argument("--templates", choices=("openai", "given"), default="openai",
                        help="openai: the 80 OpenAI ImageNet templates (default); given: the --template list")
    parser.add_argument("--template", action="append", default=[], help='a prompt template with {} for the class '
                        'name (repeatable; with --templates given), e.g. "a {}"')
    parser.add_argument("--max-templates", type=_args.non_negative_int, default=0, metavar="N",
                        help="only the first N templates (0 = all); fewer is a partial run (complete = false)")
    parser.add_argument("--verify", action="store_true", help="check the folder is complete before scoring")
    parser.add_argument("--expect-images", type=int, default=50_000,
                        help="with --verify: the images the copy holds (default 50000); fewer than the set's "
                        "--split-images is a partial run")
    parser.add_argument("--split-images", type=int, default=None,
                        help="images of the complete split (default: 50000 with --classnames imagenet, else "
                        "--expect-images with --verify, else the images found)")
    parser.add_argument("--expect-classes", type=int, default=1000, help="with --verify (default 1000)")
    parser.add_argument("--no-require-wnids", action="store_true",
                        help="with --verify: class folders need not be named by WordNet ids (synthetic sets)")
    parser.add_argument("--max-images", type=int, default=0, help="score only the first N images (0 = all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap over images (default 0)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals "
                        "(default 1000)")
    add_model_arguments(parser)
    _args.add_output(parser, "--out", required=True, help="summary CSV (one row)")
    _args.add_output(parser, "--predictions", default=None, help="per-image .npz: image_path, label, top5, class_names")


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


def templates_for(args: argparse.Namespace) -> list:
    from clipxai.models.zeroshot import openai_templates

    if args.templates == "openai":
        if args.template:
            raise InputError("--template", "template", "no --template with --templates openai")
        return openai_templates()
    if not args.template:
        raise InputError("--template", "template", "at least one template with --templates given")
    for template in args.template:
        if "{}" not in template:
            raise InputError("--template", "template", f"a template with {{}} for the class name, got {template!r}")
    return list(args.template)


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


def split_images(args: argparse.Namespace, dataset) -> int:
    """The images of the complete split: a copy with fewer (a subset, a rehearsal) is scored as a partial run."""
    from clipxai.data import imagenet

    if args.split_images is not None:
        return args.split_images
    if args.classnames == "imagenet":
        return imagenet.N_VAL_IMAGES
    return args.expect_images if args.verify else len(dataset.samples)


def run(args: argparse.Namespace) -> int:
    from clipxai.data import imagenet
    from clipxai.metrics.bootstrap import ci
    from clipxai.metrics.classification import topk_correct
    from clipxai.models.zeroshot import classifier

    if args.verify:
        problems = imagenet.verify(args.data, args.devkit, expected_images=args.expect_images,
                                   expected_classes=args.expect_classes, require_wnids=not args.no_require_wnids)
        if problems:
            for problem in problems:
                log.error("%s", problem)
            raise InputError(args.data, "contents", f"a complete validation set ({len(problems)} problems, first: "
                             f"{problems[0]})")
    dataset = imagenet.load(args.data, args.devkit)
    names = class_names_for(dataset, args.classnames)
    templates = templates_for(args)
    n_templates_all = len(templates)
    templates = templates[:args.max_templates] if args.max_templates else templates
    samples = dataset.samples[:args.max_images] if args.max_images else dataset.samples
    if not samples:
        raise InputError(args.data, "images", "at least one image")
    model = load_for_args(args)
    weights = classifier(model.model, model.tokenizer, names, templates)
    logits = image_logits(model, samples, weights, args.batch_size, args.workers, not args.no_progress)
    labels = np.array([label for _, label in samples], dtype=np.int64)
    scores = logits.numpy()
    row = {"dataset": args.dataset_label or Path(args.data).name, "model": args.model_label or args.model,
           "n_images": len(samples), "n_split_images": split_images(args, dataset), "n_classes": len(names),
           "n_templates": len(templates),
           "templates": args.templates if args.templates == "openai" else " | ".join(templates)}
    for k in (1, 5):
        correct = topk_correct(scores, labels, k).astype(np.float64)
        mean, lo, hi = ci(correct, args.seed, args.bootstrap, keys=(row["dataset"], row["model"], f"top{k}"))
        row.update({f"top{k}": mean, f"top{k}_lo": lo, f"top{k}_hi": hi})
    row.update({"chance_top1": 1.0 / len(names),
                "complete": bool(row["n_images"] >= row["n_split_images"] and len(templates) == n_templates_all)})
    write_csv(args.out, pd.DataFrame([row]))
    if args.predictions:
        order = np.argsort(-scores, axis=1, kind="stable")[:, :5]
        save_npz(args.predictions, image_path=np.array([str(p) for p, _ in samples]), label=labels,
                 top5=order.astype(np.int32), class_names=np.array(names))
    log.info("zero-shot %s on %s: top-1 %.4f, top-5 %.4f (%d images, %d classes)", row["model"], row["dataset"],
             row["top1"], row["top5"], row["n_images"], row["n_classes"])
    return 0
