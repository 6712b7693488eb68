"""One shard of the ImageNet-segmentation protocol (the ``segment-imagenet`` verb's): the methods asked for, the
zero-shot classifier they explain, and every method's maps of every image of the shard in both input geometries
(:mod:`clipxai.protocols.segmentation`), returned together so that nothing is written before all are done.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from tqdm import tqdm

from clipxai.errors import InputError
from clipxai.protocols import segmentation


def build_methods(texts: list[str], labels: list[str] | None, seed: int, shard: int
                  ) -> list[segmentation.SegmentationMethod]:
    """Every ``--method`` text as a :class:`clipxai.protocols.segmentation.SegmentationMethod` (in order), with its
    ``--label`` where given; checked before any model or data is read."""
    from clipxai import attribution
    from clipxai.protocols.grounding import parse_method
    from clipxai.seeding import derive_seed

    if labels is not None and len(labels) != len(texts):
        raise InputError("--label", "count", f"one label per --method ({len(texts)}), got {len(labels)}")
    methods = []
    for i, text in enumerate(texts):
        name, params = parse_method(text)
        method = None
        if name != segmentation.DECOMPOSITION:
            if name == "random" and "seed" not in params:
                # keyed by method name and shard (not label): the seed a run of the method alone draws
                params["seed"] = derive_seed(seed, "random", "imagenet-seg", shard)
            method = attribution.get(name, **params)
        label = labels[i] if labels is not None else name
        methods.append(segmentation.SegmentationMethod(name, params, label or name, method))
    return methods


def read_classifier(path: str) -> tuple[dict, torch.Tensor]:
    """The zero-shot classifier [D, classes] and its class list (.json beside), checked to agree."""
    from clipxai.artifacts.classifier import load_classifier, read_classes

    classes = read_classes(path)
    classifier = torch.from_numpy(load_classifier(path))
    if classifier.shape[1] != len(classes["classnames"]):
        raise InputError(path, "shape", f"one column per class of its class list "
                         f"({len(classes['classnames'])}), got {tuple(classifier.shape)}")
    return classes, classifier


def map_shard(methods: list[segmentation.SegmentationMethod], loaded, data, rows, classifier: torch.Tensor,
              classes: dict, batch_size: int) -> tuple[list[dict[str, np.ndarray]], int]:
    """Per method the arrays of its .npz (ids, labels, the maps and predicted classes of both geometries, method,
    label, params), and how many images had the same input in both geometries (their maps computed once)."""
    transforms = {mode: segmentation.image_input(loaded, mode) for mode in segmentation.MODES}
    grids = [{mode: [] for mode in segmentation.MODES} for _ in methods]
    predicted = [{mode: [] for mode in segmentation.MODES} for _ in methods]
    reused = 0
    for start in tqdm(range(0, len(rows), batch_size), desc=f"segment {len(methods)} methods", unit="batch"):
        chunk = rows[start:start + batch_size]
        pictures = [data.image(i) for i in chunk]
        inputs = {mode: torch.stack([transforms[mode](picture) for picture in pictures]) for mode in transforms}
        same = inputs["faithful"].shape == inputs["corrected"].shape and torch.equal(inputs["faithful"],
                                                                                     inputs["corrected"])
        reused += len(chunk) if same else 0
        corrected = segmentation.batch_maps(methods, loaded, inputs["corrected"], classifier, classes["classnames"],
                                            classes["attribution_prompt"])
        faithful = corrected if same else segmentation.batch_maps(
            methods, loaded, inputs["faithful"], classifier, classes["classnames"], classes["attribution_prompt"])
        for i in range(len(methods)):
            for mode, (maps, classes_of) in (("corrected", corrected[i]), ("faithful", faithful[i])):
                grids[i][mode].append(maps.astype(np.float32))
                predicted[i][mode].append(classes_of)
    gh, gw = loaded.grid

    def joined(i, mode):
        return (np.concatenate(grids[i][mode]) if grids[i][mode] else np.zeros((0, gh, gw), np.float32),
                np.concatenate(predicted[i][mode]) if predicted[i][mode] else np.zeros(0, np.int64))

    ids = np.array([data.ids[i] for i in rows], dtype=np.str_)
    labels = data.labels[rows].astype(np.int64)
    outputs = []
    for i, spec in enumerate(methods):
        (grid, classes_of), (faithful_grid, faithful_classes) = joined(i, "corrected"), joined(i, "faithful")
        outputs.append(dict(ids=ids, labels=labels, predicted=classes_of, image_grid=grid,
                            faithful_predicted=faithful_classes, faithful_image_grid=faithful_grid,
                            image_size=np.int64(loaded.image_size), method=np.array(spec.name),
                            label=np.array(spec.label), params=np.array(json.dumps(spec.params, sort_keys=True))))
    return outputs, reused
