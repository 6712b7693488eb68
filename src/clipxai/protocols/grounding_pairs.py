"""The pairs the grounding protocol explains (docs/protocols.md C), per entry and direction, defined once for the
verbs that build them (ground, faithfulness) and the one that scores their maps (score-grounding).

Text->image: the image, against the phrase's utterance alone. Image->text: the image with everything outside the
phrase's mask blacked out, against every utterance of the narrative joined by single spaces (what the original fed
CLIP). Light on purpose (numpy and PIL only): score-grounding imports it without the model code.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def i2t_text(entry) -> str:
    """The image->text caption: every utterance of the narrative joined by single spaces, as the original did."""
    return " ".join(entry.utterances)


def i2t_text_and_span(entry) -> tuple[str, tuple[int, int]] | None:
    """:func:`i2t_text` and the phrase's character span in it; None when the entry does not say which utterance of
    its narrative the phrase is (no ``utterances`` / ``segment_index``, or they do not hold its utterance)."""
    utterances = getattr(entry, "utterances", None)
    k = getattr(entry, "segment_index", None)
    if not utterances or k is None or k >= len(utterances) or utterances[k] != entry.utterance:
        return None
    start = sum(len(u) + 1 for u in utterances[:k])
    return i2t_text(entry), (start, start + len(entry.utterance))


def black_outside(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """``image`` with every pixel outside the boolean ``mask`` [H, W] set to black."""
    pixels = np.asarray(image, dtype=np.uint8) * mask[..., None].astype(np.uint8)
    return Image.fromarray(pixels)


def explained_image(dataset, entry, direction: str) -> Image.Image:
    """The image of ``entry`` the protocol explains in ``direction`` (before padding and preprocessing)."""
    image = dataset.image(entry)
    if direction == "i2t":
        image = black_outside(image, dataset.mask(entry))
    return image
