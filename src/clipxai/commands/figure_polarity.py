"""Verb ``figure-polarity``: positive vs negative saliency (seed 001).

Positive saliency explains the cosine similarity of image and phrase (what makes them match); negative saliency
explains 1 - similarity (what speaks against the match), both with gradient rollout weighted by the last block's
gradient (``rollout-last-grad``, parameter ``polarity``).
"""

from __future__ import annotations

from clipxai.commands import _saliency
from clipxai.viz import saliency

NAME = "figure-polarity"
HELP = "positive vs negative saliency of image and phrase (seed 001)"
RULE = "figure_polarity"


def add_arguments(parser) -> None:
    _saliency.add_arguments(parser)
    parser.add_argument("--method", default="rollout-last-grad", help="a registry method with a polarity parameter")
    parser.add_argument("--rule", default=RULE)


def run(args) -> int:
    from clipxai import attribution

    positive = attribution.get(args.method, polarity="positive")
    negative = attribution.get(args.method, polarity="negative")
    model = _saliency.load_model(args)
    examples = saliency.load_examples(args.data, args.split, args.n)
    images, tokens = _saliency.model_inputs(model, examples, [e.phrase for e in examples])
    maps = {"positive": positive.attribute(model, images, tokens).image,
            "negative": negative.attribute(model, images, tokens).image}
    fig, axes = saliency.grid_figure(len(examples), 3)
    for i, example in enumerate(examples):
        saliency.draw_input(axes[i, 0], example, example.phrase)
        for j, polarity in enumerate(("positive", "negative"), start=1):
            saliency.draw_map(axes[i, j], example, maps[polarity][i], f"{polarity} ({args.method})" if i == 0
                              else None)
    saliency.publish(
        fig, args, NAME, figure_title="Positive vs negative saliency", title="Positive vs negative saliency",
        caption=(f"{len(examples)} images of the {args.split} split and their first phrase. Positive: what raises "
                 "the cosine similarity of image and phrase; negative: what raises 1 - similarity. Both by "
                 f"{args.method}; maps min-max normalised per panel (jet)."),
        examples=[e.entry_id for e in examples], method=args.method)
    return 0
