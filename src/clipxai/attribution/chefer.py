"""Gradient-weighted attention relevance: Chefer et al. 2021 and seed 001's ViT saliency variants.

All of them run one forward with explicit attention and one backward of the summed per-row objective, then
combine each block's attention A_b and its gradient G_b (docs/protocols.md A and B):
- ``chefer2021``: objective logit_scale * cos(image, text); R = I, R += mean_heads(clamp(G_b * A_b, 0)) @ R for
  blocks start_layer..last; image = R[CLS, patches], text = R[EOT, caption tokens] (sum 1). Both towers from the
  same backward.
- ``gradcam-vit``: last block only, mean_heads(clamp(G * A)) (objective: cosine similarity).
- ``rollout-all-grads``: the same rollout over all blocks, each with its own gradient (cosine similarity).
- ``rollout-last-grad``: all blocks, each weighted by the LAST block's gradient (seed 001's proposal).
``polarity="negative"`` (seed 001's negative saliency) explains 1 - similarity instead.
"""

from __future__ import annotations

from clipxai.attribution.base import (Attribution, Method, Objective, block_range, check_polarity, clip_logit,
                                      dissimilarity, gradient_rollout, prepare_inputs, register, relevance_rows,
                                      similarity, trace_attention)
from clipxai.models.attention import attention_blocks


def attention_relevance(method: str, model, images, texts, objective: Objective, start_layer: int,
                        last_grad_only: bool = False, towers=("visual", "text")) -> Attribution:
    """Gradient rollout (see :func:`clipxai.attribution.base.gradient_rollout`) on the chosen towers.

    ``start_layer`` counts per tower with Python indexing: -1 = the last block only, 0 = every block.
    """
    clip = model.model
    ranges = {tower: block_range(method, start_layer, len(attention_blocks(clip, tower)), tower) for tower in towers}
    trace = trace_attention(model, images, texts, objective, towers)
    visual = text = None
    if "visual" in towers:
        visual = gradient_rollout(trace.visual_probs, trace.visual_grads, ranges["visual"], last_grad_only)
    if "text" in towers:
        text = gradient_rollout(trace.text_probs, trace.text_grads, ranges["text"], last_grad_only)
    return relevance_rows(visual, text, model, texts)


@register
class Chefer2021(Method):
    """Chefer et al. 2021 relevance of the CLIP logit, image and text side from one backward."""

    name = "chefer2021"
    defaults = {"start_layer": -1}  # faithful default: the published code used only the last block

    def attribute(self, model, images, texts) -> Attribution:
        images, texts = prepare_inputs(self.name, model, images, texts)
        return attention_relevance(self.name, model, images, texts, clip_logit, self.params["start_layer"])


class _SimilaritySaliency(Method):
    """Seed 001's ViT saliency family: objective = cosine similarity (negative polarity: 1 - similarity)."""

    defaults = {"polarity": "positive"}
    start_layer: int = 0
    last_grad_only: bool = False

    def check_params(self) -> None:
        check_polarity(self.name, self.params["polarity"])

    def attribute(self, model, images, texts) -> Attribution:
        images, texts = prepare_inputs(self.name, model, images, texts)
        objective = similarity if self.params["polarity"] == "positive" else dissimilarity
        return attention_relevance(self.name, model, images, texts, objective, self.start_layer,
                                   self.last_grad_only)


@register
class GradCamViT(_SimilaritySaliency):
    """GradCAM on the last attention block: mean_heads(clamp(G * A)) of the CLS row (text: EOT row)."""

    name = "gradcam-vit"
    start_layer = -1


@register
class RolloutAllGrads(_SimilaritySaliency):
    """Gradient rollout over all blocks, each block weighted by its own gradient."""

    name = "rollout-all-grads"


@register
class RolloutLastGrad(_SimilaritySaliency):
    """Gradient rollout over all blocks, every block weighted by the last block's gradient (seed 001)."""

    name = "rollout-last-grad"
    last_grad_only = True
