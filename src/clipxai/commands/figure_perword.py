"""Verb ``figure-perword``: per-word saliency (seed 001), one column per content word of an image's phrases.

For each word the objective is image . (text(caption) - text(caption without the word)), explained by gradient
rollout weighted by the last block's gradient (``per-word``): where in the image that word of the caption is
grounded. A word the caption does not contain gives a zero map, drawn as "no signal". The figure shows the
corrected removal (the word's tokens; ``per-word`` mode) and says so in its caption.
"""

from __future__ import annotations

from clipxai.commands import _saliency
from clipxai.viz import saliency

NAME = "figure-perword"
HELP = "per-word saliency of a caption's content words (seed 001)"
RULE = "figure_perword"
MODE = "corrected"  # per-word's removal of the word: its tokens (see clipxai.attribution.perword)


def add_arguments(parser) -> None:
    _saliency.add_arguments(parser)
    parser.add_argument("--rule", default=RULE)


def run(args) -> int:
    from clipxai import attribution

    model = _saliency.load_model(args)
    examples = saliency.load_examples(args.data, args.split, args.n, args.max_words)
    columns = max(len(e.words) for e in examples)
    fig, axes = saliency.grid_figure(len(examples), columns + 1)
    for i, example in enumerate(examples):
        saliency.draw_input(axes[i, 0], example, example.caption)
        images, tokens = _saliency.model_inputs(model, [example], [example.caption])
        grids = [attribution.get("per-word", word=word, mode=MODE).attribute(model, images, tokens).image[0]
                 for word in example.words]
        for j in range(columns):
            if j < len(grids):
                saliency.draw_map(axes[i, j + 1], example, grids[j], f'"{example.words[j]}"')
            else:
                saliency.blank(axes[i, j + 1])
    saliency.publish(
        fig, args, NAME, figure_title="Per-word saliency", title="Per-word saliency",
        caption=(f"{len(examples)} images of the {args.split} split with their whole caption (first column); each "
                 "other column explains one content word of the caption: objective image . (text(caption) - "
                 "text(caption without the word)), gradient rollout weighted by the last block's gradient. Maps "
                 "min-max normalised per panel (jet). Corrected mode: the word's tokens are removed from the "
                 "caption; seed 001 removed it from the caption's text with a regular expression, which also cuts "
                 "it out of other words (per-word mode=faithful)."),
        mode=MODE,
        examples=[e.entry_id for e in examples], words=[e.words for e in examples])
    return 0
