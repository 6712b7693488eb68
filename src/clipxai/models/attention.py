"""Attention that can be explained: an explicit softmax(QK^T/sqrt(d) + mask) V that keeps its probabilities.

open_clip >= 3 runs attention through fused ``scaled_dot_product_attention`` (or ``nn.MultiheadAttention`` with
``need_weights=False``), so the attention probabilities never exist as a tensor and relevance methods (Chefer
et al., rollout, GradCAM on attention) have nothing to read. :func:`record_attention` swaps, for the duration of a
``with`` block, the ``forward`` of each attention module of the chosen towers *on that instance* (never the class:
other models in the process are untouched) for an explicit computation that stores the probabilities
``[B, heads, N, N]`` and keeps their gradient. Outputs equal the unpatched model's to float rounding.

Patched, per tower:
- ViT image tower and text tower: the ``attn`` module of every residual block (``nn.MultiheadAttention`` for
  open_clip's default block, ``open_clip.transformer.Attention`` for its custom block). The text tower's causal
  mask arrives as the block's ``attn_mask`` and is applied as usual.
- ResNet image tower (``ModifiedResNet``): its ``AttentionPool2d``, an attention over ``[mean token, spatial
  tokens]`` whose output is the mean token's row. It is recorded as a one-block tower, so attention-based methods
  run on ResNet CLIP too (row 0 plays the role of the ViT's CLS row).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from open_clip.modified_resnet import AttentionPool2d, ModifiedResNet
from open_clip.transformer import Attention, VisionTransformer

TOWERS = ("visual", "text")


@dataclass
class AttentionRecord:
    """Attention probabilities of the last forward through each patched block.

    ``visual`` / ``text``: one entry per block, in order (``None`` until that block has run). Each entry is
    ``[B, heads, N, N]``; when the forward ran with gradients enabled the tensor keeps its gradient, so after a
    backward ``record.visual[i].grad`` is d objective / d probabilities of block i. A later forward through the
    same tower replaces the entries.
    """

    visual: list = field(default_factory=list)
    text: list = field(default_factory=list)

    def _store(self, tower: str, index: int, probs: torch.Tensor) -> None:
        if torch.is_grad_enabled():
            if probs.requires_grad:
                probs.retain_grad()
            else:
                # Nothing upstream requires grad (frozen weights, plain input): make the probabilities a leaf,
                # so d objective / d probabilities still exists; later blocks depend on it through the graph.
                probs.requires_grad_(True)
        getattr(self, tower)[index] = probs


def attention_blocks(model: torch.nn.Module, tower: str) -> list[torch.nn.Module]:
    """The modules :func:`record_attention` patches in ``tower`` ("visual" or "text"), in forward order."""
    if tower == "visual":
        visual = model.visual
        if isinstance(visual, VisionTransformer):
            return [block.attn for block in visual.transformer.resblocks]
        if isinstance(visual, ModifiedResNet):
            return [visual.attnpool]
        raise NotImplementedError(
            f"record_attention supports open_clip VisionTransformer and ModifiedResNet image towers, "
            f"not {type(visual).__name__}")
    if tower == "text":
        # open_clip.CLIP keeps the text transformer at the top level; CustomTextCLIP under .text
        text_transformer = getattr(model, "transformer", None)
        if text_transformer is None and hasattr(model, "text"):
            text_transformer = getattr(model.text, "transformer", None)
        if text_transformer is None or not hasattr(text_transformer, "resblocks"):
            raise NotImplementedError(
                f"record_attention supports open_clip transformer text towers; {type(model).__name__} has none")
        return [block.attn for block in text_transformer.resblocks]
    raise ValueError(f"unknown tower {tower!r}: expected one of {TOWERS}")


def _additive_mask(mask: torch.Tensor | None, batch: int, heads: int, dtype: torch.dtype) -> torch.Tensor | None:
    """An attention mask as an additive float tensor broadcastable to [B, heads, Lq, Lk]."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    else:
        mask = mask.to(dtype)
    if mask.dim() == 3:  # [B*heads, Lq, Lk]
        mask = mask.reshape(batch, heads, mask.shape[-2], mask.shape[-1])
    return mask


def _softmax_attention(q, k, v, mask, record: AttentionRecord, tower: str, index: int) -> torch.Tensor:
    """q, k, v [B, heads, L, d] -> context [B, heads, Lq, d]; stores the probabilities."""
    logits = (q * (q.shape[-1] ** -0.5)) @ k.transpose(-1, -2)
    if mask is not None:
        logits = logits + mask
    probs = logits.softmax(dim=-1)
    record._store(tower, index, probs)
    return probs @ v


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, width = x.shape
    return x.reshape(batch, length, heads, width // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


def _multihead_forward(module: torch.nn.MultiheadAttention, record: AttentionRecord, tower: str, index: int):
    """Explicit replacement for ``nn.MultiheadAttention.forward`` as open_clip's residual blocks call it."""
    if module.bias_k is not None or module.add_zero_attn or (module.dropout and module.training):
        raise NotImplementedError("record_attention: bias_k/bias_v, add_zero_attn and training-mode attention "
                                  "dropout are not supported")

    def forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if not module.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if module._qkv_same_embed_dim:
            w_q, w_k, w_v = module.in_proj_weight.chunk(3)
        else:
            w_q, w_k, w_v = module.q_proj_weight, module.k_proj_weight, module.v_proj_weight
        b_q = b_k = b_v = None
        if module.in_proj_bias is not None:
            b_q, b_k, b_v = module.in_proj_bias.chunk(3)
        heads = module.num_heads
        q = _split_heads(F.linear(query, w_q, b_q), heads)
        k = _split_heads(F.linear(key, w_k, b_k), heads)
        v = _split_heads(F.linear(value, w_v, b_v), heads)
        batch, length = q.shape[0], q.shape[2]
        mask = _additive_mask(attn_mask, batch, heads, q.dtype)
        if is_causal and mask is None:
            mask = torch.full((length, k.shape[2]), float("-inf"), dtype=q.dtype, device=q.device).triu(1)
        if key_padding_mask is not None:
            padding = _additive_mask(key_padding_mask, batch, heads, q.dtype)[:, None, None, :]
            mask = padding if mask is None else mask + padding
        context = _softmax_attention(q, k, v, mask, record, tower, index)
        out = module.out_proj(_merge_heads(context))
        if not module.batch_first:
            out = out.transpose(0, 1)
        weights = None
        if need_weights:
            weights = getattr(record, tower)[index]
            weights = weights.mean(dim=1) if average_attn_weights else weights
        return out, weights

    return forward


def _custom_attention_forward(module: Attention, record: AttentionRecord, tower: str, index: int):
    """Explicit replacement for ``open_clip.transformer.Attention.forward`` (the custom block's attention)."""
    if module.logit_scale is not None:
        raise NotImplementedError("record_attention: scaled-cosine attention is not supported")

    def forward(x, attn_mask=None):
        batch, length, width = x.shape
        q, k, v = F.linear(x, module.in_proj_weight, module.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (_split_heads(t, module.num_heads) for t in (q, k, v))
        q, k = module.ln_q(q), module.ln_k(k)
        mask = _additive_mask(attn_mask, batch, module.num_heads, q.dtype)
        context = _softmax_attention(q, k, v, mask, record, tower, index)
        if module.head_scale is not None:
            context = context * module.head_scale
        out = module.ln_inner(_merge_heads(context))
        return module.out_drop(module.out_proj(out))

    return forward


def _attention_pool_forward(module: AttentionPool2d, record: AttentionRecord, tower: str, index: int):
    """Explicit replacement for ResNet CLIP's ``AttentionPool2d.forward``: one attention over
    [mean token, spatial tokens] (row-major), returning the mean token's output."""

    def forward(x):
        tokens = x.flatten(2).transpose(1, 2)  # [B, C, H, W] -> [B, HW, C]
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + module.positional_embedding.to(tokens.dtype)
        heads = module.num_heads
        q = _split_heads(module.q_proj(tokens), heads)
        k = _split_heads(module.k_proj(tokens), heads)
        v = _split_heads(module.v_proj(tokens), heads)
        context = _softmax_attention(q, k, v, None, record, tower, index)
        return module.c_proj(_merge_heads(context)[:, 0])

    return forward


def _explicit_forward(module: torch.nn.Module, record: AttentionRecord, tower: str, index: int):
    if isinstance(module, torch.nn.MultiheadAttention):
        return _multihead_forward(module, record, tower, index)
    if isinstance(module, Attention):
        return _custom_attention_forward(module, record, tower, index)
    if isinstance(module, AttentionPool2d):
        return _attention_pool_forward(module, record, tower, index)
    raise NotImplementedError(f"record_attention: no explicit forward for {type(module).__name__}")


@contextlib.contextmanager
def record_attention(model: torch.nn.Module, towers: Sequence[str] = TOWERS) -> Iterator[AttentionRecord]:
    """Within the block, the chosen towers of an open_clip CLIP compute attention explicitly and record it.

    Yields an :class:`AttentionRecord`. Only instance attributes are set (``module.forward``), and every one is
    restored in ``finally``, also when the block raises; nesting works (the inner block restores the outer patch).
    """
    if isinstance(towers, str):
        towers = (towers,)
    record = AttentionRecord()
    patched: list[tuple[torch.nn.Module, bool, object]] = []
    try:
        for tower in towers:
            blocks = attention_blocks(model, tower)
            setattr(record, tower, [None] * len(blocks))
            for index, module in enumerate(blocks):
                replacement = _explicit_forward(module, record, tower, index)
                had_instance_forward = "forward" in module.__dict__
                patched.append((module, had_instance_forward, module.__dict__.get("forward")))
                module.forward = replacement
        yield record
    finally:
        for module, had_instance_forward, previous in reversed(patched):
            if had_instance_forward:
                module.forward = previous
            else:
                del module.forward

