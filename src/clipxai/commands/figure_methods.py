"""Verb ``figure-methods``: ViT saliency methods side by side (seed 001's method comparison).

One row per example image (explained for its first phrase), one column per attribution method from the registry
(``clipxai.attribution.get(name).attribute(model, images, texts)``). Defaults: GradCAM on the last block, attention
rollout, gradient rollout weighted by the last block's gradient (seed 001's proposal) and Chefer et al. 2021.
"""

from __future__ import annotations

from clipxai.commands import _saliency
from clipxai.viz import saliency
from clipxai.commands import _args

NAME = "figure-methods"
HELP = "saliency methods side by side on a few images (seed 001 method comparison)"
RULE = "figure_methods"
DEFAULT_METHODS = ["gradcam-vit", "rollout", "rollout-last-grad", "chefer2021"]


def add_arguments(parser) -> None:
    _saliency.add_arguments(parser)
    parser.add_argument("--methods", nargs="+", action=_args.ExtendDefault, default=DEFAULT_METHODS,
                        help="registry names, one column each")
    parser.add_argument("--rule", default=RULE)


def run(args) -> int:
    from clipxai import attribution

    methods = [attribution.get(name) for name in args.methods]  # unknown names fail before any work
    model = _saliency.load_model(args)
    examples = saliency.load_examples(args.data, args.split, args.n)
    images, tokens = _saliency.model_inputs(model, examples, [e.phrase for e in examples])
    maps = [method.attribute(model, images, tokens).image for method in methods]
    fig, axes = saliency.grid_figure(len(examples), len(methods) + 1)
    for i, example in enumerate(examples):
        saliency.draw_input(axes[i, 0], example, example.phrase)
        for j, (name, grid) in enumerate(zip(args.methods, maps), start=1):
            saliency.draw_map(axes[i, j], example, grid[i], name if i == 0 else None)
    saliency.publish(
        fig, args, NAME, figure_title="Saliency methods compared", title="Saliency methods compared",
        caption=(f"{len(examples)} images of the {args.split} split, each explained for its first phrase by "
                 f"{', '.join(args.methods)} (columns). gradcam-vit, rollout-last-grad: objective = cosine "
                 "similarity; chefer2021: the CLIP logit, last block only as published; rollout: attention alone "
                 "(not text-specific). Maps min-max normalised per panel (jet)."),
        examples=[e.entry_id for e in examples], methods=list(args.methods))
    return 0
