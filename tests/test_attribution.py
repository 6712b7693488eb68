"""Attribution methods on tiny random CLIPs: hand-checked Chefer relevance, batching, the identities that tie the
methods together, baselines, the registry and its errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import clipxai.attribution as attribution
from clipxai.attribution.base import (Attribution, caption_mask, similarity, to_grid, token_relevance, upsample)
from clipxai.attribution.chefer import attention_relevance
from clipxai.attribution.perword import remove_word, word_token_ids
from clipxai.attribution.rollout import attention_rollout
from clipxai.errors import InputError
from clipxai.models.registry import load_model

torch.set_num_threads(1)

TEXT_CFG = {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}
VIT_CFG = {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32}
RESNET_CFG = {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "head_width": 32}
CAPTIONS = ["a red circle", "a blue square and a red star", "red"]


def _load(tmp_path_factory, name, vision_cfg, text_layers=2):
    path = tmp_path_factory.mktemp("models") / f"{name}.json"
    path.write_text(json.dumps({"embed_dim": 32, "vision_cfg": vision_cfg,
                                "text_cfg": {**TEXT_CFG, "layers": text_layers}}))
    torch.manual_seed(0)
    return load_model(str(path))


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    return _load(tmp_path_factory, "tiny_vit", VIT_CFG)


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    return _load(tmp_path_factory, "tiny_resnet", RESNET_CFG)


def _inputs(model, batch=3, seed=0):
    images = torch.randn(batch, 3, model.image_size, model.image_size, generator=torch.Generator().manual_seed(seed))
    return images, model.tokenizer(CAPTIONS[:batch])


def _params(name):
    return {"word": "red"} if name == "per-word" else {}


def _applies(name, model):
    is_resnet = not model.is_vit
    return not (name.endswith("-rn") and not is_resnet or name == "dense" and is_resnet)


# --- Chefer et al. against a hand computation -----------------------------------------------------------------

def _hand_block(block, x, mask=None):
    """One open_clip residual block with attention written out; returns (output, probabilities)."""
    attn = block.attn
    q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    batch, length, width = q.shape
    heads = attn.num_heads
    q, k, v = (t.reshape(batch, length, heads, width // heads).transpose(1, 2) for t in (q, k, v))
    logits = q @ k.transpose(-1, -2) / math.sqrt(width // heads)
    if mask is not None:
        logits = logits + mask
    probs = logits.softmax(dim=-1)
    out = (probs @ v).transpose(1, 2).reshape(batch, length, width)
    x = x + attn.out_proj(out)
    return x + block.mlp(block.ln_2(x)), probs


def _hand_chefer(model, images, tokens, start):
    clip = model.model
    visual = clip.visual
    x = visual._embeds(images)
    visual_probs = []
    for block in visual.transformer.resblocks:
        x, probs = _hand_block(block, x)
        visual_probs.append(probs)
    image_emb = visual.ln_post(x[:, 0]) @ visual.proj
    y = clip.token_embedding(tokens) + clip.positional_embedding
    text_probs = []
    for block in clip.transformer.resblocks:
        y, probs = _hand_block(block, y, clip.attn_mask)
        text_probs.append(probs)
    eot = tokens.argmax(-1)
    text_emb = clip.ln_final(y)[torch.arange(len(tokens)), eot] @ clip.text_projection
    score = clip.logit_scale.exp() * F.cosine_similarity(image_emb, text_emb)
    grads = torch.autograd.grad(score.sum(), visual_probs + text_probs)

    def rollout(probs, grads):
        relevance = torch.eye(probs[0].shape[-1]).expand(len(tokens), -1, -1)
        for b in range(len(probs))[start:]:
            relevance = relevance + (grads[b] * probs[b]).clamp(min=0).mean(1) @ relevance
        return relevance

    n = len(visual_probs)
    image = rollout(visual_probs, grads[:n])[:, 0, 1:]
    text_rows = rollout(text_probs, grads[n:])[torch.arange(len(tokens)), eot]
    text = torch.full(tokens.shape, math.nan)
    for row, end in enumerate(eot.tolist()):
        text[row, 1:end] = text_rows[row, 1:end] / text_rows[row, 1:end].sum()
    return image.reshape(len(tokens), *model.grid), text


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("start_layer", [-1, 0])
def test_chefer_matches_hand_computation(tmp_path_factory, layers, start_layer):
    model = _load(tmp_path_factory, f"chefer_{layers}", {**VIT_CFG, "layers": layers}, text_layers=layers)
    images, tokens = _inputs(model)
    got = attribution.get("chefer2021", start_layer=start_layer).attribute(model, images, tokens)
    image, text = _hand_chefer(model, images, tokens, start_layer)
    torch.testing.assert_close(got.image, image.detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.text, text.detach(), atol=1e-5, rtol=1e-4, equal_nan=True)
    if layers == 2 and start_layer == 0:  # all layers differ from last-only: start_layer is honoured
        last_only = attribution.get("chefer2021", start_layer=-1).attribute(model, images, tokens)
        assert not torch.allclose(last_only.image, got.image)


# --- batching, shapes and conventions for every method -----------------------------------------------------------

@pytest.mark.parametrize("name", attribution.available())
@pytest.mark.parametrize("arch", ["vit", "resnet"])
def test_batched_equals_one_pair_at_a_time(request, name, arch):
    model = request.getfixturevalue(arch)
    if not _applies(name, model):
        with pytest.raises(attribution.NotApplicableError, match=name):
            attribution.get(name, **_params(name)).attribute(model, *_inputs(model, batch=1))
        return
    method = attribution.get(name, **_params(name))
    images, tokens = _inputs(model)
    batched = method.attribute(model, images, tokens)
    assert batched.image.shape == (3, *model.grid) and batched.image.dtype == torch.float32
    assert torch.isfinite(batched.image).all()
    for row in range(3):
        single = method.attribute(model, images[row:row + 1], tokens[row:row + 1])
        torch.testing.assert_close(single.image[0], batched.image[row], atol=1e-5, rtol=1e-4)
        if batched.text is not None:
            torch.testing.assert_close(single.text[0], batched.text[row], atol=1e-5, rtol=1e-4, equal_nan=True)
    if batched.text is not None:
        mask = caption_mask(tokens)
        assert batched.text.shape == tokens.shape
        assert torch.isnan(batched.text[~mask]).all() and not torch.isnan(batched.text[mask]).any()
        sums = torch.nansum(batched.text, dim=1)  # 1, or 0 where no caption token got any relevance
        assert (((sums - 1).abs() < 1e-5) | ((sums == 0) & (batched.text[mask].reshape(-1) >= 0).all())).all()
        assert (sums > 0.5).sum() >= 2


# --- identities between methods ------------------------------------------------------------------------------------

def test_rollout_of_identity_attention_is_identity():
    eye = torch.eye(5).expand(2, 3, 5, 5)  # [B, heads, N, N]
    torch.testing.assert_close(attention_rollout([eye, eye, eye]), torch.eye(5).expand(2, 5, 5))
    uniform = torch.full((1, 1, 4, 4), 0.25)  # and a non-trivial case: 0.5 * uniform + 0.5 * I, twice
    mixed = 0.5 * uniform[0, 0] + 0.5 * torch.eye(4)
    torch.testing.assert_close(attention_rollout([uniform, uniform])[0], mixed @ mixed)


def _minmax(maps):
    flat = maps.reshape(len(maps), -1)
    low, high = flat.min(1).values, flat.max(1).values
    return (maps - low[:, None, None]) / (high - low)[:, None, None]


@pytest.mark.parametrize("arch", ["vit", "resnet"])
def test_gradcam_vit_equals_last_block_chefer_after_minmax(request, arch):
    model = request.getfixturevalue(arch)
    images, tokens = _inputs(model)
    gradcam = attribution.get("gradcam-vit").attribute(model, images, tokens).image
    chefer = attribution.get("chefer2021", start_layer=-1).attribute(model, images, tokens).image
    assert not torch.allclose(gradcam, chefer)  # different objectives (cosine vs logit) ...
    torch.testing.assert_close(_minmax(gradcam), _minmax(chefer), atol=1e-4, rtol=0)  # ... same map


def test_gradcam_vit_is_last_block_chefer_divided_by_logit_scale(vit):
    """Seed 001's gradcam-vit and Chefer et al. on the last block are one method: the relevance is I + cam, its
    CLS row over the patches is cam itself, and cam = mean_heads(clamp(G * A)) is positively homogeneous in the
    gradient, which Chefer's objective (logit_scale * cosine) scales by logit_scale."""
    images, tokens = _inputs(vit)
    gradcam = attribution.get("gradcam-vit").attribute(vit, images, tokens)
    chefer = attribution.get("chefer2021", start_layer=-1).attribute(vit, images, tokens)
    scale = float(vit.model.logit_scale.detach().exp())
    assert scale != pytest.approx(1.0)  # the identity below is not the trivial one
    torch.testing.assert_close(chefer.image, scale * gradcam.image, rtol=1e-5, atol=1e-7)
    # token relevance is normalised to sum 1: the factor cancels, the two are the same numbers
    torch.testing.assert_close(chefer.text, gradcam.text, rtol=1e-5, atol=1e-7, equal_nan=True)
    # and the tables say so (clipxai table-imagenet-seg marks both rows)
    import pandas as pd

    from clipxai.protocols.heads_imagenet_seg import identity_notes

    rows = pd.DataFrame({"method": ["gradcam-vit", "chefer2021", "chefer2021-all", "gradcam-negative"],
                         "registry_method": ["gradcam-vit", "chefer2021", "chefer2021", "gradcam-vit"],
                         "params": ["{}", '{"start_layer": -1}', '{"start_layer": 0}', '{"polarity": "negative"}']})
    notes = identity_notes(rows)
    assert set(notes) == {"gradcam-vit", "chefer2021"}
    assert "chefer2021" in notes["gradcam-vit"] and "gradcam-vit" in notes["chefer2021"]


def test_per_word_faithful_cuts_the_word_out_of_other_words_too(vit):
    from clipxai.attribution.perword import remove_word_text

    assert remove_word_text("a cat on a background", "a") == " ct on  bckground"
    caption = ["a red circle on a background"]
    images = _inputs(vit, batch=1)[0]
    faithful = attribution.get("per-word", word="a", mode="faithful")
    corrected = attribution.get("per-word", word="a", mode="corrected")
    # "a" also inside "background": the two removals give different captions, so different objectives and maps
    assert not torch.allclose(faithful.attribute_captions(vit, images, caption).image,
                              corrected.attribute_captions(vit, images, caption).image)
    # a word that occurs only as a whole word: string and token removal leave the same caption, the same map
    for word in ("red", "circle"):
        string = attribution.get("per-word", word=word, mode="faithful").attribute_captions(vit, images, caption)
        tokens = attribution.get("per-word", word=word, mode="corrected").attribute_captions(vit, images, caption)
        torch.testing.assert_close(string.image, tokens.image)
    # the token path of mode=faithful substitutes in the decoded caption: the same as from the string here
    from_tokens = faithful.attribute(vit, images, vit.tokenizer(caption))
    torch.testing.assert_close(from_tokens.image, faithful.attribute_captions(vit, images, caption).image)
    # corrected is the default (the token removal this method always had)
    default = attribution.get("per-word", word="a").attribute(vit, images, vit.tokenizer(caption))
    torch.testing.assert_close(default.image, corrected.attribute_captions(vit, images, caption).image)
    with pytest.raises(InputError, match="regular expression"):
        attribution.get("per-word", word="(", mode="faithful")
    with pytest.raises(InputError, match="mode"):
        attribution.get("per-word", word="a", mode="both")


@pytest.mark.parametrize("name", ["gradcam-vit", "rollout-all-grads", "rollout-last-grad"])
def test_negative_saliency_of_one_minus_s_is_positive_saliency_of_minus_s(vit, name):
    images, tokens = _inputs(vit)
    negative = attribution.get(name, polarity="negative").attribute(vit, images, tokens)
    positive = attribution.get(name).attribute(vit, images, tokens)
    method = attribution.get(name)
    of_minus_s = attention_relevance(name, vit, images, tokens, lambda i, t, s: -similarity(i, t, s),
                                     method.start_layer, method.last_grad_only)
    torch.testing.assert_close(negative.image, of_minus_s.image, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(negative.image, positive.image)


@pytest.mark.parametrize("name", ["gradcam-rn", "gradcampp-rn"])
def test_resnet_negative_saliency_is_the_other_side_of_the_cam(resnet, name):
    images, tokens = _inputs(resnet)
    positive = attribution.get(name).attribute(resnet, images, tokens).image
    negative = attribution.get(name, polarity="negative").attribute(resnet, images, tokens).image
    if name == "gradcam-rn":  # relu(cam) and relu(-cam): never both positive, together all of |cam|
        assert (positive * negative == 0).all()
        assert (positive + negative > 0).any()
    else:
        assert not torch.allclose(positive, negative)


def test_per_word_of_an_absent_word_is_zero_and_of_a_present_word_is_not(vit):
    images, tokens = _inputs(vit)
    absent = attribution.get("per-word", word="giraffe").attribute(vit, images, tokens)
    assert torch.equal(absent.image, torch.zeros_like(absent.image))
    present = attribution.get("per-word", word="red").attribute(vit, images, tokens)
    assert (present.image[[0, 1, 2]].flatten(1).abs().sum(1) > 0).all()  # "red" is in every caption
    blue = attribution.get("per-word", word="blue").attribute(vit, images, tokens).image
    assert blue[1].abs().sum() > 0 and blue[0].abs().sum() == 0 and blue[2].abs().sum() == 0


def test_remove_word_deletes_every_occurrence_and_repads(vit):
    tokens = vit.tokenizer(["a red circle and a red star", "a blue square"])
    red = word_token_ids(vit, "red")
    removed = remove_word(tokens, red)
    torch.testing.assert_close(removed[0], vit.tokenizer(["a circle and a star"])[0])
    torch.testing.assert_close(removed[1], tokens[1])  # absent: unchanged


def test_unimodal_is_chefer_with_empty_text_and_black_image(vit):
    images, tokens = _inputs(vit)
    got = attribution.get("unimodal", start_layer=0).attribute(vit, images, tokens)
    chefer = attribution.get("chefer2021", start_layer=0)
    empty = vit.tokenizer([""] * 3)
    mean, std = torch.tensor(vit.mean)[:, None, None], torch.tensor(vit.std)[:, None, None]
    black = ((torch.zeros(3, 3, 32, 32) - mean) / std)
    torch.testing.assert_close(got.image, chefer.attribute(vit, images, empty).image, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.text, chefer.attribute(vit, black, tokens).text, atol=1e-5, rtol=1e-4,
                               equal_nan=True)


def test_dense_is_patch_tokens_through_ln_post_and_proj(vit):
    images, tokens = _inputs(vit)
    got = attribution.get("dense").attribute(vit, images, tokens).image
    visual = vit.model.visual
    with torch.no_grad():
        x = visual.transformer(visual._embeds(images))
        patches = F.normalize(visual.ln_post(x[:, 1:]) @ visual.proj, dim=-1)
        text = F.normalize(vit.model.encode_text(tokens), dim=-1)
    expected = (patches * text[:, None]).sum(-1).reshape(3, *vit.grid)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


# --- random baseline -----------------------------------------------------------------------------------------------

def test_random_is_seeded_uniform_and_independent_of_batching(vit):
    images, tokens = _inputs(vit)
    first = attribution.get("random", seed=7).attribute(vit, images, tokens)
    again = attribution.get("random", seed=7).attribute(vit, images, tokens)
    other = attribution.get("random", seed=8).attribute(vit, images, tokens)
    assert torch.equal(first.image, again.image)
    assert torch.allclose(first.text, again.text, equal_nan=True)
    assert not torch.allclose(first.image, other.image)
    assert ((first.image >= 0) & (first.image < 1)).all()
    assert not torch.allclose(first.image[0], first.image[1])  # rows draw independently
    reversed_order = attribution.get("random", seed=7).attribute(vit, images.flip(0), tokens.flip(0))
    assert torch.equal(reversed_order.image, first.image.flip(0))


# --- helpers and errors --------------------------------------------------------------------------------------------

def test_upsample_is_bilinear_then_minmax():
    grid = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[5.0, 5.0], [5.0, 5.0]]])
    maps = upsample(grid, (8, 6))
    assert maps.shape == (2, 8, 6)
    assert maps[0].min() == 0 and maps[0].max() == 1
    assert torch.equal(maps[1], torch.zeros(8, 6))  # constant map: zeros, not NaN
    assert maps[0, 0, 0] < maps[0, 0, -1] < maps[0, -1, -1]  # orientation kept
    torch.testing.assert_close(upsample(grid[:1], 2), (grid[:1] - 0) / 3)


def test_token_relevance_and_grid_conventions(vit):
    tokens = vit.tokenizer(["a red circle"])  # start, 3 caption tokens, end
    scores = torch.arange(16, dtype=torch.float32)[None]
    relevance = token_relevance(scores, tokens)
    torch.testing.assert_close(relevance[0, 1:4], torch.tensor([1.0, 2.0, 3.0]) / 6)
    assert torch.isnan(relevance[0, 0]) and torch.isnan(relevance[0, 4:]).all()
    assert to_grid(torch.arange(16.0)[None], vit)[0, 1, 0] == 4  # row-major patches
    with pytest.raises(ValueError, match="grid"):
        to_grid(torch.zeros(1, 15), vit)


def test_registry_and_parameter_errors(vit, resnet):
    assert {"chefer2021", "random", "unimodal", "gradcam-rn", "dense", "per-word"} <= set(attribution.available())
    with pytest.raises(InputError, match="one of"):
        attribution.get("no-such-method")
    with pytest.raises(InputError, match="start_layr"):
        attribution.get("chefer2021", start_layr=0)
    with pytest.raises(InputError, match="int"):
        attribution.get("chefer2021", start_layer="last")
    assert attribution.get("chefer2021", start_layer="0").params == {"start_layer": 0}  # from --set / config
    with pytest.raises(InputError, match="polarity"):
        attribution.get("gradcam-vit", polarity="sideways")
    with pytest.raises(InputError, match="word"):
        attribution.get("per-word")
    images, tokens = _inputs(vit)
    with pytest.raises(InputError, match="start_layer"):
        attribution.get("chefer2021", start_layer=2).attribute(vit, images, tokens)  # 2 blocks: 0, 1, -1, -2
    with pytest.raises(InputError, match=r"\[B, 3, 32, 32\]"):
        attribution.get("chefer2021").attribute(vit, torch.zeros(3, 3, 64, 64), tokens)
    with pytest.raises(InputError, match="one text per image"):
        attribution.get("chefer2021").attribute(vit, images, tokens[:2])
    with pytest.raises(attribution.NotApplicableError, match="ResNet"):
        attribution.get("gradcam-rn").attribute(vit, images, tokens)
    with pytest.raises(attribution.NotApplicableError, match="ViT"):
        attribution.get("dense").attribute(resnet, *_inputs(resnet))
    assert isinstance(Attribution(image=None, text=None), Attribution)
