"""Gradient-free attention baselines: raw last-block attention and attention rollout (Abnar & Zuidema 2020)."""

from __future__ import annotations

import torch

from clipxai.attribution.base import Attribution, Method, prepare_inputs, register, relevance_rows, trace_attention


def attention_rollout(probs: list) -> torch.Tensor:
    """Abnar & Zuidema: R = prod over blocks (first applied first) of rownorm(0.5 * mean_heads(A_b) + 0.5 * I).

    probs: list of [B, heads, N, N]; returns [B, N, N].
    """
    batch, _, tokens, _ = probs[0].shape
    identity = torch.eye(tokens, dtype=probs[0].dtype, device=probs[0].device)
    relevance = identity.expand(batch, -1, -1)
    for block_probs in probs:
        mixed = 0.5 * block_probs.mean(dim=1) + 0.5 * identity  # the residual connection
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        relevance = mixed @ relevance
    return relevance


class _GradientFree(Method):
    """Relevance from the traced attention probabilities alone: no objective, no gradients."""

    @staticmethod
    def combine(probs: list) -> torch.Tensor:
        """[B, N, N] relevance from the blocks' attention probabilities (each [B, heads, N, N])."""
        raise NotImplementedError

    def attribute(self, model, images, texts) -> Attribution:
        images, texts = prepare_inputs(self.name, model, images, texts)
        trace = trace_attention(model, images, texts, objective=None)
        return relevance_rows(self.combine(trace.visual_probs), self.combine(trace.text_probs), model, texts)


@register
class RawAttention(_GradientFree):
    """Last block's attention, mean over heads: the CLS row over the patches (text: the EOT row)."""

    name = "raw-attention"

    @staticmethod
    def combine(probs: list) -> torch.Tensor:
        return probs[-1].mean(dim=1)


@register
class Rollout(_GradientFree):
    """Attention rollout over all blocks (no gradients, not class- or text-specific)."""

    name = "rollout"
    combine = staticmethod(attention_rollout)
