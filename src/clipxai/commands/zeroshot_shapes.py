"""Verb ``zeroshot-shapes``: zero-shot classification of single-object eval images of a shapes world.

Classes are every (colour, shape) category of the data set, prompted as "a {colour} {shape}" (the captions'
own wording: "a photo of ..." scores far lower, those words never occur in training). Accuracy is reported
over all single-object images, over the combinations seen in training and over the held-out ones, with colour-only
and shape-only accuracy, so a reader sees which attribute the model has learned.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from clipxai.errors import InputError
from clipxai.io import write_csv
from clipxai.commands._args import add_model_arguments
from clipxai.commands import _args

NAME = "zeroshot-shapes"
HELP = "zero-shot accuracy of a model on the single-object eval images of a shapes world"
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    add_model_arguments(parser)
    parser.add_argument("--held-out", default="", help='comma-separated "colour shape" combinations')
    parser.add_argument("--batch-size", type=int, default=128)
    _args.add_output(parser, "--out", required=True)


def single_object_entries(dataset) -> list:
    """Entries that are the only thing-segment of their narrative (the image shows one object)."""
    per_narrative: dict[tuple, list] = {}
    for entry in dataset.entries:
        per_narrative.setdefault((entry.image_id, entry.narrative_index), []).append(entry)
    return [group[0] for group in per_narrative.values()
            if len(group) == 1 and len(group[0].categories) == 1 and group[0].isthing[0]]


def run(args) -> int:
    from clipxai.data import png
    from clipxai.models.registry import load_model

    dataset = png.load(args.data, args.split)
    classes = sorted(c["name"] for c in dataset.panoptic.categories.values() if c.get("isthing", 1))
    held_out = {h.strip() for h in args.held_out.split(",") if h.strip()}
    unknown = sorted(held_out - set(classes))
    if unknown:
        raise InputError("--held-out", "held_out", f"category names of {args.data} ({unknown[0]!r} is not one)")
    entries = single_object_entries(dataset)
    if not entries:
        raise InputError(args.data, f"{args.split} split", "some single-object images")
    lm = load_model(args.model, args.pretrained, args.checkpoint)
    with torch.no_grad():
        text = F.normalize(lm.model.encode_text(lm.tokenizer([f"a {c}" for c in classes])), dim=-1)
        scores = []
        for start in range(0, len(entries), args.batch_size):
            batch = entries[start:start + args.batch_size]
            images = torch.stack([lm.preprocess(dataset.image(e)) for e in batch])
            scores.append(F.normalize(lm.model.encode_image(images), dim=-1) @ text.T)
    scores = torch.cat(scores)
    labels = torch.tensor([classes.index(e.categories[0]) for e in entries])
    top5 = scores.topk(min(5, len(classes)), dim=-1).indices
    predicted = top5[:, 0]
    colour = lambda i: classes[i].split(" ")[0]  # noqa: E731
    shape = lambda i: classes[i].split(" ")[-1]  # noqa: E731
    rows = []
    subsets = {"all": np.ones(len(entries), bool),
               "seen combinations": np.array([e.categories[0] not in held_out for e in entries]),
               "held-out combinations": np.array([e.categories[0] in held_out for e in entries])}
    for subset, keep in subsets.items():
        idx = np.flatnonzero(keep)
        if not len(idx):
            continue
        p, y = predicted[idx].tolist(), labels[idx].tolist()
        rows.append({"subset": subset, "n_images": len(idx), "n_classes": len(classes),
                     "top1": float(np.mean([a == b for a, b in zip(p, y)])),
                     "top5": float((top5[idx] == labels[idx, None]).any(-1).float().mean()),
                     "colour_acc": float(np.mean([colour(a) == colour(b) for a, b in zip(p, y)])),
                     "shape_acc": float(np.mean([shape(a) == shape(b) for a, b in zip(p, y)])),
                     "chance_top1": 1.0 / len(classes)})
    write_csv(args.out, pd.DataFrame(rows))
    log.info("zero-shot: %s", rows)
    return 0
