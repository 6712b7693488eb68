"""Explicit attention (clipxai.models.attention): same outputs as open_clip, probabilities and gradients kept,
every patch undone afterwards (also after an exception)."""

from __future__ import annotations

import open_clip
import pytest
import torch

from clipxai.models.attention import attention_blocks, record_attention

torch.set_num_threads(1)

TEXT_CFG = dict(context_length=16, vocab_size=49408, width=64, heads=2, layers=2)


def _vit(**vision_extra):
    torch.manual_seed(0)
    vision = dict(image_size=32, patch_size=8, width=64, layers=2, head_width=32, **vision_extra)
    return open_clip.model.CLIP(embed_dim=32, vision_cfg=vision, text_cfg=TEXT_CFG).eval()


def _resnet():
    torch.manual_seed(0)
    vision = dict(image_size=64, layers=[1, 1, 1, 1], width=8, head_width=32)
    return open_clip.model.CLIP(embed_dim=32, vision_cfg=vision, text_cfg=TEXT_CFG).eval()


MODELS = {
    "vit": (_vit, 32),
    "vit-custom-block": (lambda: _vit(qk_norm=True, scale_attn_inner=True), 32),  # open_clip's other block type
    "resnet": (_resnet, 64),
}


def _tokens() -> torch.Tensor:
    """Three captions of different lengths: end token (largest id) then zero padding."""
    tokens = torch.zeros(3, 16, dtype=torch.long)
    for row, length in enumerate((3, 7, 14)):
        tokens[row, 0] = 49406
        tokens[row, 1:1 + length] = torch.arange(1000 + row, 1000 + row + length)
        tokens[row, 1 + length] = 49407
    return tokens


def _state(model):
    """Everything a patch could leave behind: module identities and instance-level forwards."""
    return [(name, id(module), "forward" in module.__dict__) for name, module in model.named_modules()]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_patched_outputs_equal_original(kind):
    build, size = MODELS[kind]
    model = build()
    images = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    tokens = _tokens()
    with torch.no_grad():
        image_ref, text_ref = model.encode_image(images), model.encode_text(tokens)
    with torch.no_grad(), record_attention(model) as record:
        image_out, text_out = model.encode_image(images), model.encode_text(tokens)
    torch.testing.assert_close(image_out, image_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(text_out, text_ref, atol=1e-5, rtol=0)
    n_visual = 1 if kind == "resnet" else 2
    assert len(record.visual) == n_visual and len(record.text) == 2
    tokens_visual = (size // 32) ** 2 + 1 if kind == "resnet" else (size // 8) ** 2 + 1
    for probs in record.visual + record.text:
        assert probs.shape[0] == 3 and probs.shape[-1] == probs.shape[-2]
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))
    assert record.visual[0].shape[-1] == tokens_visual
    # the text tower is causal: no token attends to a later one
    upper = torch.triu(torch.ones(16, 16, dtype=torch.bool), diagonal=1)
    for probs in record.text:
        assert probs[..., upper].abs().max() == 0


def test_probabilities_keep_their_gradient_and_match_a_hand_softmax():
    model = _vit()
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    block = model.visual.transformer.resblocks[1]
    seen = {}
    hook = block.ln_1.register_forward_hook(lambda m, i, o: seen.__setitem__("x", o.detach()))
    try:
        with record_attention(model, towers=("visual",)) as record:
            model.encode_image(images).sum().backward()
    finally:
        hook.remove()
    # the recorded probabilities of block 1 are softmax(q k^T / sqrt(d)) of that block's input
    q, k, _ = torch.nn.functional.linear(seen["x"], block.attn.in_proj_weight, block.attn.in_proj_bias).chunk(3, -1)
    q = q.reshape(2, 17, 2, 32).transpose(1, 2)
    k = k.reshape(2, 17, 2, 32).transpose(1, 2)
    expected = (q @ k.transpose(-1, -2) / 32 ** 0.5).softmax(-1)
    torch.testing.assert_close(record.visual[1].detach(), expected, atol=1e-5, rtol=0)
    assert record.text == []  # text tower not patched
    for probs in record.visual:
        assert probs.grad is not None and probs.grad.shape == probs.shape and probs.grad.abs().sum() > 0


def test_gradients_exist_with_frozen_weights():
    model = _vit()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    with record_attention(model) as record:
        image = model.encode_image(torch.randn(1, 3, 32, 32))
        text = model.encode_text(_tokens()[:1])
        torch.cosine_similarity(image, text).sum().backward()
    for probs in record.visual + record.text:
        assert probs.grad is not None and probs.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_patches_are_undone_after_an_exception(kind):
    build, size = MODELS[kind]
    model = build()
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        reference = model.encode_image(images), model.encode_text(_tokens())
    before = _state(model)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    patched_modules = attention_blocks(model, "visual") + attention_blocks(model, "text")
    with pytest.raises(RuntimeError, match="boom"):
        with record_attention(model):
            assert all("forward" in m.__dict__ for m in patched_modules)
            raise RuntimeError("boom")
    assert _state(model) == before
    assert not any("forward" in m.__dict__ for m in model.modules())
    for m in patched_modules:  # the class method is back in charge
        assert m.forward.__func__ is type(m).forward
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key])
    with torch.no_grad():
        assert torch.equal(model.encode_image(images), reference[0])
        assert torch.equal(model.encode_text(_tokens()), reference[1])


def test_patch_is_per_instance_and_nests():
    first, second = _vit(), _vit()
    with record_attention(first) as outer:
        with torch.no_grad():
            second.encode_image(torch.randn(1, 3, 32, 32))  # an unpatched twin records nothing
        assert outer.visual == [None, None]
        with record_attention(first, towers=("visual",)) as inner:
            with torch.no_grad():
                first.encode_image(torch.randn(1, 3, 32, 32))
            assert all(p is not None for p in inner.visual) and outer.visual == [None, None]
        with torch.no_grad():
            first.encode_image(torch.randn(1, 3, 32, 32))  # the outer patch is back
        assert all(p is not None for p in outer.visual)
    assert not any("forward" in m.__dict__ for m in first.modules())


def test_unknown_tower_is_rejected_and_nothing_stays_patched():
    model = _vit()
    with pytest.raises(ValueError, match="unknown tower"):
        with record_attention(model, towers=("visual", "audio")):
            pass
    assert not any("forward" in m.__dict__ for m in model.modules())
