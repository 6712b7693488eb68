"""CLIPpy-style dense patch-text similarity: every patch token through the image tower's final norm and
projection, L2-normalised, dot the normalised text embedding (docs/protocols.md E). No gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clipxai.attribution.base import (Attribution, Method, NotApplicableError, prepare_inputs, register,
                                      require_vit, to_grid)


def patch_embeddings(model, images: torch.Tensor) -> torch.Tensor:
    """[B, gh*gw, D] per-patch embeddings in the joint space, L2-normalised."""
    visual = model.model.visual
    if visual.attn_pool is not None or visual.proj is None:
        raise NotApplicableError("dense", model.name, "a ViT whose tokens reach the joint space through ln_post "
                                 "and proj", "an attentional pooler or no projection")
    out = visual.forward_intermediates(images, indices=1, normalize_intermediates=True, intermediates_only=True,
                                       output_fmt="NLC")
    patches = out["image_intermediates"][-1]  # last block, ln_post applied, class token split off
    return F.normalize(patches @ visual.proj, dim=-1)


@register
class Dense(Method):
    name = "dense"
    maps_text = False

    def attribute(self, model, images, texts) -> Attribution:
        require_vit(self.name, model)
        images, texts = prepare_inputs(self.name, model, images, texts)
        with torch.no_grad():
            patches = patch_embeddings(model, images)
            text = F.normalize(model.model.encode_text(texts), dim=-1)
            scores = torch.einsum("bpd,bd->bp", patches, text)
        return Attribution(image=to_grid(scores, model), text=None)
