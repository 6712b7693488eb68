"""The zero-shot classifier artifact written by ``clipxai zeroshot-classifier`` and read by the verbs that use it
(waterbirds-ablation, segment-imagenet): ``classifier.npy`` [D, classes] (float32) and beside it a JSON with the
class names, the templates and the one prompt per class that attribution methods are given as text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipxai.errors import InputError


def read_classes(path: str | Path) -> dict:
    """The JSON written beside a classifier: classnames, templates, attribution_prompt."""
    from clipxai.data._json import read_json

    path = Path(path).with_suffix(".json")
    meta = read_json(path, "the class list written by `clipxai zeroshot-classifier`")
    for key in ("classnames", "attribution_prompt"):
        if key not in meta:
            raise InputError(path, key, "a key of the class list")
    return meta


def load_matrix(path: str | Path, file_is: str, shape_is: str) -> np.ndarray:
    """A 2-D ``.npy`` as float32; InputError says what the file (``file_is``) and its shape (``shape_is``) should be."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(path, "(file)", f"{file_is} ({err.__class__.__name__})") from None
    if array.ndim != 2:
        raise InputError(path, "shape", f"{shape_is}, got {array.shape}")
    return array.astype(np.float32)


def load_classifier(path: str | Path) -> np.ndarray:
    """Zero-shot weights [D, classes] (float32)."""
    return load_matrix(path, "a .npy of zero-shot weights", "[D, classes]")
