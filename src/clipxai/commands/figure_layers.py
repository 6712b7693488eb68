"""Verb ``figure-layers``: layer-wise attention (seed 001), one column per attention block of the image tower.

Two rows per example image: the block's attention from the CLS token to the patches (mean over heads: where the
block looks, whatever the text), and the same attention weighted by its gradient, mean over heads of
clamp(dS/dA_b * A_b, 0) with S = cosine(image, text) for the image's phrase (what the block contributes to
matching this text; the per-block term of Chefer et al.'s rollout).
"""

from __future__ import annotations

import torch

from clipxai.commands import _saliency
from clipxai.viz import saliency

NAME = "figure-layers"
HELP = "layer-wise attention and gradient-weighted attention per image-tower block (seed 001)"
RULE = "figure_layers"


def add_arguments(parser) -> None:
    _saliency.add_arguments(parser)
    parser.add_argument("--rule", default=RULE)


def block_maps(model, images: torch.Tensor, tokens: torch.Tensor) -> tuple[list, list]:
    """Per block: CLS->patch attention [B, gh, gw] and gradient-weighted attention [B, gh, gw] (cosine objective)."""
    import torch.nn.functional as F

    from clipxai.attribution.base import cosine, to_grid, trace_attention

    with torch.no_grad():
        text_embedding = F.normalize(model.model.encode_text(tokens), dim=-1)

    def objective(image_emb, _text_emb, _logit_scale):
        return cosine(image_emb, text_embedding)

    trace = trace_attention(model, images, tokens, objective, towers=("visual",))
    attention, weighted = [], []
    for probs, grads in zip(trace.visual_probs, trace.visual_grads):
        attention.append(to_grid(probs.mean(dim=1)[:, 0, 1:], model))
        weighted.append(to_grid((grads * probs).clamp(min=0).mean(dim=1)[:, 0, 1:], model))
    return attention, weighted


def run(args) -> int:
    model = _saliency.load_model(args)
    examples = saliency.load_examples(args.data, args.split, args.n)
    images, tokens = _saliency.model_inputs(model, examples, [e.phrase for e in examples])
    attention, weighted = block_maps(model, images, tokens)
    blocks = len(attention)
    fig, axes = saliency.grid_figure(2 * len(examples), blocks + 1)
    for i, example in enumerate(examples):
        top, bottom = axes[2 * i], axes[2 * i + 1]
        saliency.draw_input(top[0], example, example.phrase)
        saliency.blank(bottom[0])
        bottom[0].text(0.5, 0.5, "below: gradient x\nattention for\nthe phrase above", transform=bottom[0].transAxes,
                       ha="center", va="center", fontsize=7)
        top[1].set_ylabel("attention", fontsize=7)
        bottom[1].set_ylabel("grad x attention", fontsize=7)
        for b in range(blocks):
            saliency.draw_map(top[b + 1], example, attention[b][i], f"block {b}" if i == 0 else None)
            saliency.draw_map(bottom[b + 1], example, weighted[b][i])
    saliency.publish(
        fig, args, NAME, figure_title="Layer-wise attention of the image tower", title="Layer-wise attention",
        caption=(f"{len(examples)} images of the {args.split} split, each explained for its first phrase. Per image, "
                 f"top row: the CLS token's attention to the patches in each of the {blocks} blocks (mean over "
                 "heads); bottom row: that attention weighted by its gradient, mean over heads of "
                 "clamp(dS/dA * A, 0) with S the cosine similarity of image and phrase. Maps min-max normalised "
                 "per panel (jet)."),
        examples=[e.entry_id for e in examples], blocks=blocks)
    return 0
