"""Shared parts of the saliency figures (seed 001): example images, model inputs, maps, and drawing them.

Every saliency figure is a grid: one row per example image, the first column the input with its text, the other
columns one map each, drawn over the image (jet, alpha 0.5) after bilinear upsampling and per-map min-max
normalisation (:func:`clipxai.attribution.base.upsample`). Maps that are identically zero are drawn as "no signal"
rather than a misleading uniform colour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from clipxai.errors import InputError  # noqa: E402

# Function words a per-word explanation would not be asked about (the captions' glue, not their content).
STOP_WORDS = frozenset("a an the and or of in on at to with this that these those is are there here i can see "
                       "it its some two three".split())
CELL_INCHES = 1.9


@dataclass
class Example:
    """One image of a grounding data set with the texts the saliency figures explain."""

    entry_id: str
    image: Image.Image  # RGB, padded to a square as the grounding protocol feeds it
    phrase: str         # the first phrase of the image's narrative (what text->image grounding explains)
    caption: str        # the whole narrative
    words: list[str]    # content words of the image's grounded phrases, in order, for per-word saliency


def content_words(texts: list[str], limit: int) -> list[str]:
    """Distinct non-stop words of ``texts`` in order of appearance (lower case, letters only), at most ``limit``."""
    words: list[str] = []
    for text in texts:
        for word in re.findall(r"[A-Za-z]+", text.lower()):
            if word not in STOP_WORDS and word not in words:
                words.append(word)
    return words[:limit]


def load_examples(root: str, split: str, n: int, max_words: int = 4) -> list[Example]:
    """The first ``n`` distinct images of a PNG-format data set, in file order (deterministic)."""
    from clipxai.data import png
    from clipxai.data.transforms import pad_to_square

    if n < 1:
        raise InputError("--n", "n", f"at least one example image, got {n}")
    dataset = png.load(root, split)
    # the first n images; per image, the phrases of its first narrative that are grounded (have segments)
    phrases: dict[int, list] = {}
    for entry in dataset.entries:
        if entry.image_id not in phrases:
            if len(phrases) == n:
                break
            phrases[entry.image_id] = []
        first = phrases[entry.image_id]
        if not first or entry.narrative_index == first[0].narrative_index:
            first.append(entry)
    if not phrases:
        raise InputError(root, "entries", f"at least one grounding entry in the {split} split")
    examples = []
    for entries in phrases.values():
        entry = entries[0]
        examples.append(Example(entry_id=entry.entry_id, image=pad_to_square(dataset.image(entry)),
                                phrase=entry.utterance, caption=entry.caption,
                                words=content_words([e.utterance for e in entries], max_words)))
    return examples


def input_files(args) -> list[str]:
    """What a saliency figure read, for its sidecar: the narratives file and the model's files (or its name)."""
    from clipxai.data import png

    files = [str(png.narratives_path(args.data, args.split))]
    model_dir = Path(args.model)
    if model_dir.is_dir():
        files += sorted(str(p) for p in model_dir.iterdir() if p.name.startswith("open_clip_"))
    else:
        files.append(f"open_clip:{args.model}" + (f"/{args.pretrained}" if args.pretrained else ""))
    if args.checkpoint:
        files.append(str(args.checkpoint))
    return files


def heat(grid, side: int) -> np.ndarray:
    """One patch-grid map [gh, gw] -> [side, side] in [0, 1] (bilinear, min-max; a constant map -> zeros)."""
    import torch

    from clipxai.attribution.base import upsample

    grid = torch.as_tensor(np.asarray(grid, dtype=np.float32))[None]
    return upsample(torch.nan_to_num(grid), (side, side))[0].numpy()


def grid_figure(rows: int, cols: int):
    """A figure of rows x cols image cells, axes without ticks."""
    fig, axes = plt.subplots(rows, cols, figsize=(CELL_INCHES * cols, CELL_INCHES * rows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def draw_input(ax, example: Example, text: str) -> None:
    """The input image with the text it is explained for (as text: no mathtext, whatever the data set says)."""
    ax.imshow(example.image)
    ax.set_title(_shorten(f'"{text}"'), fontsize=7, parse_math=False)


def draw_map(ax, example: Example, grid, title: str | None = None) -> None:
    """A map over its image; an all-zero map is labelled "no signal" instead of drawn."""
    side = example.image.size[0]
    ax.imshow(example.image)
    values = np.nan_to_num(np.asarray(grid, dtype=np.float32))
    if np.any(values != 0):
        ax.imshow(heat(values, side), cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
    else:
        ax.text(0.5, 0.5, "no signal", transform=ax.transAxes, ha="center", va="center", fontsize=8,
                color="white", backgroundcolor="black", parse_math=False)
    if title is not None:
        ax.set_title(_shorten(title), fontsize=8, parse_math=False)


def blank(ax) -> None:
    ax.axis("off")


def publish(fig, args, verb: str, *, figure_title: str, title: str, caption: str, **extra) -> None:
    """Finish, save (PNG + PDF) and close a saliency figure, then write its provenance sidecar.

    ``args.label`` (data set / model), when given, is appended to both titles.
    """
    from clipxai.viz.provenance import save_figure, write_sidecar

    finish(fig, f"{figure_title} - {args.label}" if args.label else figure_title)
    save_figure(fig, args.out)
    plt.close(fig)
    write_sidecar(args.out, title=f"{title} ({args.label})" if args.label else title, caption=caption,
                  rule=args.rule, command=f"clipxai {verb}", inputs=input_files(args), section="saliency", **extra)


def finish(fig, title: str) -> None:
    fig.suptitle(title, fontsize=9, parse_math=False)
    fig.tight_layout()


def _shorten(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"
