"""Every registered method on the papers' real architectures (random weights): the grid comes from the model
(7x7 for ViT-B-32 and RN50, 14x14 for ViT-B-16), and a method that cannot apply says so.

Slow: about 90 s on 2 shared cores. ScoreCAM on RN50 runs one forward per layer4 channel (2048); that case took
13 minutes on the loaded 2-core machine, so it runs only with CLIPXAI_TEST_SCORECAM_RN50=1 (it is skipped, and
reported as skipped, otherwise; ScoreCAM itself is covered on a tiny ResNet CLIP in test_attribution.py)."""

from __future__ import annotations

import os

import pytest
import torch

import clipxai.attribution as attribution
from clipxai.models.registry import load_model

torch.set_num_threads(1)

GRIDS = {"ViT-B-32": (7, 7), "ViT-B-16": (14, 14), "RN50": (7, 7)}
_CACHE: dict = {}


def _model(arch):
    if arch not in _CACHE:
        _CACHE.clear()  # one architecture in memory at a time
        torch.manual_seed(0)
        _CACHE[arch] = load_model(arch)
    return _CACHE[arch]


@pytest.mark.slow
@pytest.mark.parametrize("name", attribution.available())
@pytest.mark.parametrize("arch", sorted(GRIDS))
def test_every_method_on_real_architectures(arch, name):
    if (arch, name) == ("RN50", "scorecam-rn") and not os.environ.get("CLIPXAI_TEST_SCORECAM_RN50"):
        pytest.skip("ScoreCAM on RN50: 2048 forward passes; set CLIPXAI_TEST_SCORECAM_RN50=1 to run it")
    model = _model(arch)
    assert model.grid == GRIDS[arch] and model.image_size == 224
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    tokens = model.tokenizer(["a photo of a red dog"])
    method = attribution.get(name, **({"word": "red"} if name == "per-word" else {}))
    vit = arch.startswith("ViT")
    if name.endswith("-rn") and vit or name == "dense" and not vit:
        with pytest.raises(attribution.NotApplicableError, match=name):
            method.attribute(model, images, tokens)
        return
    result = method.attribute(model, images, tokens)
    assert result.image.shape == (1, *GRIDS[arch])
    assert torch.isfinite(result.image).all()
    if name not in ("random", "eigencam-rn"):  # every other map depends on the input
        assert result.image.max() > result.image.min() or name == "per-word"
    if result.text is not None:
        assert result.text.shape == tokens.shape
        assert abs(float(torch.nansum(result.text)) - 1) < 1e-4 or float(torch.nansum(result.text)) == 0
