"""A TextSpan text pool for the shapes world: short image descriptions in its own vocabulary.

TextSpan chooses, for every head, texts from a pool of image descriptions; for the papers' models that pool is
downloaded (TextSpan's general image descriptions, seed 004's nouns). A toy CLIP trained on shapes captions knows
few words, so its pool describes what its images can show: colours, shapes, colour-shape objects, sizes, counts,
positions, every background kind of the world (including the shapes Waterbirds' sand and water), textures, and
distractors the world never shows (so a head that picks them is telling us its texts are not informative).
Every line fits the toy model's 16-token context. The order is fixed: the same pool every time.
"""

from __future__ import annotations

from clipxai.data import shapes

SIZE_WORDS = ("small", "large", "tiny", "big")
COUNTS = ("one object", "two objects", "three objects", "a single shape", "several shapes", "many shapes")
POSITIONS = ("on the left", "on the right", "at the top", "at the bottom", "in the centre", "in a corner")
# Backgrounds: the coco-png world's five kinds, then the shapes Waterbirds' two places, each in a few wordings.
BACKGROUND_TEXTS = {
    "noise": ("a noisy background", "blotchy noise", "a mottled background"),
    "gradient": ("a smooth gradient", "a gradient background", "a fading background"),
    "stripes": ("stripes", "a striped background", "diagonal stripes"),
    "checks": ("checks", "a checkered background", "a chessboard pattern"),
    "dots": ("dots", "a dotted background", "a polka dot pattern"),
    "sand": ("sand", "a sandy background", "a beach", "a desert", "dry land"),
    "water": ("water", "a water background", "waves", "a lake", "the sea"),
}
TEXTURES = ("a plain background", "a pale background", "a dark background", "a bright image", "a busy pattern",
            "a flat colour", "sharp edges", "a blurry image", "a soft texture", "a rough texture")
DISTRACTORS = ("a dog", "a cat", "a car", "a person", "a tree", "a house", "a city street", "a face", "food",
               "a bird", "music", "a number", "a word", "a mountain", "the sky", "grass")


def shapes_text_pool() -> list[str]:
    """The pool, one description per entry, no duplicates, in a fixed order."""
    colours, shape_names = list(shapes.COLOURS), list(shapes.SHAPES)
    lines: list[str] = []
    lines += [f"a {c} object" for c in colours] + [f"something {c}" for c in colours]
    lines += [f"a {s}" for s in shape_names] + [f"a {s} shape" for s in shape_names]
    lines += [f"a {combination}" for combination in shapes.COMBINATIONS]
    lines += [f"a {size} shape" for size in SIZE_WORDS] + [f"a {size} {s}" for size in ("small", "large")
                                                           for s in shape_names]
    lines += list(COUNTS)
    lines += [f"a shape {where}" for where in POSITIONS]
    lines += [text for texts in BACKGROUND_TEXTS.values() for text in texts]
    lines += [f"a {s} on {place}" for s in shape_names for place in ("sand", "water")]
    lines += list(TEXTURES) + list(DISTRACTORS)
    seen: set[str] = set()
    return [line for line in lines if not (line in seen or seen.add(line))]
