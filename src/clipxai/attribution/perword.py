"""Seed 001's per-word saliency: what one word of the caption adds, explained on the image.

Objective per row: normalised image embedding . (text embedding of the caption - text embedding of the caption
with the word's tokens removed), both text embeddings normalised and held fixed; then ``rollout-last-grad`` on
the image tower. A word absent from a caption leaves it unchanged: zero objective, zero map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clipxai.attribution.base import (Attribution, Method, block_range, check_polarity, end_positions,
                                      gradient_rollout, prepare_inputs, register, relevance_rows, trace_attention)
from clipxai.errors import InputError
from clipxai.models.attention import attention_blocks


def word_token_ids(model, word: str) -> list[int]:
    """The BPE ids of ``word`` alone (between the start and end token)."""
    tokens = model.tokenizer([word])[0]
    ids = tokens[1:int(tokens.argmax())].tolist()
    if not ids:
        raise InputError("per-word", "word", f"a word that tokenises to at least one token, got {word!r}")
    return ids


def remove_word(texts: torch.Tensor, word_ids: list[int]) -> torch.Tensor:
    """Delete every occurrence of the token sequence ``word_ids`` from each caption; re-pad with 0."""
    out = torch.zeros_like(texts)
    width = len(word_ids)
    for row, end in enumerate(end_positions(texts).tolist()):
        caption = texts[row, 1:end].tolist()
        kept, i = [], 0
        while i < len(caption):
            if caption[i:i + width] == word_ids:
                i += width
            else:
                kept.append(caption[i])
                i += 1
        rebuilt = [int(texts[row, 0])] + kept + [int(texts[row, end])]
        out[row, :len(rebuilt)] = torch.tensor(rebuilt, dtype=texts.dtype)
    return out


@register
class PerWord(Method):
    name = "per-word"
    defaults = {"word": "", "polarity": "positive"}

    def check_params(self) -> None:
        if not self.params["word"].strip():
            raise InputError(self.name, "word", "a non-empty word to explain (--set word=...)")
        check_polarity(self.name, self.params["polarity"])

    def attribute(self, model, images, texts) -> Attribution:
        images, texts = prepare_inputs(self.name, model, images, texts)
        clip = model.model
        without = remove_word(texts, word_token_ids(model, self.params["word"]))
        with torch.no_grad():
            direction = F.normalize(clip.encode_text(texts), dim=-1) - F.normalize(clip.encode_text(without), dim=-1)
        sign = 1.0 if self.params["polarity"] == "positive" else -1.0

        def objective(image_emb, _text_emb, _logit_scale):
            return sign * (F.normalize(image_emb, dim=-1) * direction).sum(dim=-1)

        blocks = block_range(self.name, 0, len(attention_blocks(clip, "visual")), "visual")
        trace = trace_attention(model, images, texts, objective, towers=("visual",))
        visual = gradient_rollout(trace.visual_probs, trace.visual_grads, blocks, last_grad_only=True)
        return relevance_rows(visual, None, model, texts)
