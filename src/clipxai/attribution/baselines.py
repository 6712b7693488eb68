"""Baselines every result is compared against: uniform random maps and the unimodal (uninformative-partner) run."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from clipxai.attribution.base import (Attribution, Method, black_images, clip_logit, empty_text_tokens,
                                      prepare_inputs, register, token_relevance)
from clipxai.attribution.chefer import attention_relevance
from clipxai.seeding import generator


def pair_key(image: torch.Tensor, tokens: torch.Tensor) -> str:
    """A stable digest of one (image, text) pair: its random draw does not depend on batch size or order."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(image.detach().cpu().numpy().astype(np.float32)).tobytes())
    digest.update(np.ascontiguousarray(tokens.detach().cpu().numpy().astype(np.int64)).tobytes())
    return digest.hexdigest()[:32]


@register
class RandomBaseline(Method):
    """U(0, 1) per patch and per caption token (tokens then normalised to sum 1).

    Each pair draws from ``clipxai.seeding.generator(seed, "random-attribution", key, <digest of the pair>)``:
    the same pair and seed always give the same map, however it is batched; ``key`` (e.g. dataset and shard)
    separates otherwise identical runs.
    """

    name = "random"
    defaults = {"seed": 0, "key": ""}

    def attribute(self, model, images, texts) -> Attribution:
        images, texts = prepare_inputs(self.name, model, images, texts)
        gh, gw = model.grid
        image = torch.empty(images.shape[0], gh, gw)
        text_scores = torch.empty(texts.shape, dtype=torch.float32)
        for row in range(images.shape[0]):
            draw = generator(self.params["seed"], "random-attribution", self.params["key"],
                             pair_key(images[row], texts[row]))
            image[row] = torch.rand(gh, gw, generator=draw)
            text_scores[row] = torch.rand(texts.shape[1], generator=draw)
        return Attribution(image=image, text=token_relevance(text_scores, texts.cpu()))


@register
class Unimodal(Method):
    """Chefer relevance with an uninformative partner (CLIP-grounding's unimodal baseline): the image side is
    explained against the empty text "", the text side against an all-black image (black in pixel space).

    Both halves run as one batch of 2B rows through one forward and one backward.
    """

    name = "unimodal"
    defaults = {"start_layer": -1}

    def attribute(self, model, images, texts) -> Attribution:
        images, texts = prepare_inputs(self.name, model, images, texts)
        batch = images.shape[0]
        both_images = torch.cat([images, black_images(model, batch)])
        both_texts = torch.cat([empty_text_tokens(model, batch), texts])
        both = attention_relevance(self.name, model, both_images, both_texts, clip_logit,
                                   self.params["start_layer"])
        return Attribution(image=both.image[:batch], text=both.text[batch:])
