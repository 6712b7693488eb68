"""Seed 001's per-word saliency: what one word of the caption adds, explained on the image.

Objective per row: normalised image embedding . (text embedding of the caption - text embedding of the caption
without the word), both text embeddings normalised and held fixed; then ``rollout-last-grad`` on the image tower.

How the word is taken out (``mode``):

- ``corrected`` (default): the word's tokens are deleted from the caption's tokens, every whole occurrence of
  that token sequence. A word absent from a caption leaves it unchanged: zero objective, zero map.
- ``faithful`` (seed 001's ``vit_perword_relevance``): ``re.sub(word, "", caption)`` on the caption's text, then
  tokenised. The word is a regular expression matched anywhere, so it is also cut out of other words ("a" turns
  "a cat on a background" into " ct on  bckground") and its special characters act as regex syntax.
  :meth:`PerWord.attribute_captions` works on the caption strings themselves; :meth:`PerWord.attribute`, given
  tokens only, substitutes in the text its tokenizer decodes them to (lower case, as the tokenizer reads it).
"""

from __future__ import annotations

import re
from typing import Sequence

import torch
import torch.nn.functional as F

from clipxai.attribution.base import (Attribution, Method, block_range, check_polarity, end_positions,
                                      gradient_rollout, prepare_inputs, register, relevance_rows, trace_attention)
from clipxai.errors import InputError
from clipxai.models.attention import attention_blocks

MODES = ("faithful", "corrected")


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


def remove_word_text(caption: str, word: str) -> str:
    """Seed 001's removal: the word as a regular expression, substituted away wherever it matches."""
    return re.sub(word, "", caption)


def decoded_captions(model, texts: torch.Tensor) -> list[str]:
    """The caption text of each token row (between the start and end token), as the tokenizer decodes it."""
    decode = getattr(model.tokenizer, "decode", None)
    if decode is None:
        raise InputError("per-word", "mode", f"'corrected' for {model.name}: its tokenizer cannot give the caption "
                         "text back (mode=faithful needs it; use attribute_captions with the captions)")
    return [decode(texts[row, 1:end].tolist()).strip() for row, end in enumerate(end_positions(texts).tolist())]


@register
class PerWord(Method):
    name = "per-word"
    defaults = {"word": "", "polarity": "positive", "mode": "corrected"}

    def check_params(self) -> None:
        if not self.params["word"].strip():
            raise InputError(self.name, "word", "a non-empty word to explain (--set word=...)")
        check_polarity(self.name, self.params["polarity"])
        if self.params["mode"] not in MODES:
            raise InputError(self.name, "mode", f"one of {', '.join(MODES)}, got {self.params['mode']!r}")
        if self.params["mode"] == "faithful":
            try:
                re.compile(self.params["word"])
            except re.error as err:
                raise InputError(self.name, "word", f"a regular expression (mode=faithful substitutes it as one), "
                                 f"got {self.params['word']!r} ({err})") from None

    def attribute(self, model, images, texts) -> Attribution:
        images, texts = prepare_inputs(self.name, model, images, texts)
        if self.params["mode"] == "faithful":
            return self.attribute_captions(model, images, decoded_captions(model, texts))
        return self._explain(model, images, texts, remove_word(texts, word_token_ids(model, self.params["word"])))

    def attribute_captions(self, model, images, captions: Sequence[str]) -> Attribution:
        """The same explanation from the captions' text (``mode=faithful`` removes the word from that text)."""
        texts = model.tokenizer(list(captions))
        images, texts = prepare_inputs(self.name, model, images, texts)
        if self.params["mode"] == "corrected":
            return self._explain(model, images, texts, remove_word(texts, word_token_ids(model, self.params["word"])))
        without = model.tokenizer([remove_word_text(caption, self.params["word"]) for caption in captions])
        return self._explain(model, images, texts, without.to(texts.device, texts.dtype))

    def _explain(self, model, images, texts, without) -> Attribution:
        clip = model.model
        with torch.no_grad():
            direction = F.normalize(clip.encode_text(texts), dim=-1) - F.normalize(clip.encode_text(without), dim=-1)
        sign = 1.0 if self.params["polarity"] == "positive" else -1.0

        def objective(image_emb, _text_emb, _logit_scale):
            return sign * (F.normalize(image_emb, dim=-1) * direction).sum(dim=-1)

        blocks = block_range(self.name, 0, len(attention_blocks(clip, "visual")), "visual")
        trace = trace_attention(model, images, texts, objective, towers=("visual",))
        visual = gradient_rollout(trace.visual_probs, trace.visual_grads, blocks, last_grad_only=True)
        return relevance_rows(visual, None, model, texts)
