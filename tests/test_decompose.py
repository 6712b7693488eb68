"""The residual decomposition of ViT CLIP image embeddings (clipxai.models.decompose, `clipxai decompose`)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from clipxai.errors import InputError
from clipxai.models.decompose import decompose, load_decomposition, tower_shape, write_shard

torch.set_num_threads(1)
TOLERANCE = 1e-5


def randomise_affine(model: torch.nn.Module) -> torch.nn.Module:
    """open_clip initialises biases to 0 and LayerNorm scales to 1, which would hide errors in how biases and
    ln_post are split over terms: give them random values."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.2)
            elif name.endswith("weight") and param.dim() == 1:
                param.uniform_(0.5, 1.5)
    return model


def tiny_clip(seed: int = 0, quick_gelu: bool = False, **vision) -> open_clip.model.CLIP:
    """A random-weight open_clip CLIP with a 2-layer, width-64 ViT on 32 px images (4x4 patches of 8 px)."""
    torch.manual_seed(seed)
    vision_cfg = {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 16, **vision}
    text_cfg = {"context_length": 8, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}
    model = open_clip.model.CLIP(embed_dim=48, vision_cfg=vision_cfg, text_cfg=text_cfg, quick_gelu=quick_gelu)
    return randomise_affine(model).eval()


def images_for(model, batch: int, seed: int = 1) -> torch.Tensor:
    size = model.visual.image_size[0]
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def assert_sums_to_embedding(model, images, parts) -> None:
    total = parts.attn.sum((1, 2)) + parts.mlp.sum(1)
    reference = model.encode_image(images, normalize=True).detach()
    assert torch.allclose(parts.embedding, reference, atol=TOLERANCE, rtol=0)
    assert (total - reference).abs().max().item() < TOLERANCE


VARIANTS = {
    "plain": {},
    "quick-gelu": {"quick_gelu": True},
    "no-ln-pre": {"no_ln_pre": True},
    "layer-scale": {"ls_init_value": 0.3},
    "final-ln-after-pool": {"final_ln_after_pool": True},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tiny_variants_sum_to_normalised_embedding(variant):
    model = tiny_clip(**VARIANTS[variant])
    images = images_for(model, 3)
    parts = decompose(model, images, spatial_layers=(0, -1))
    assert parts.attn.shape == (3, 2, 4, 48)
    assert parts.mlp.shape == (3, 3, 48)
    assert parts.spatial.shape == (3, 2, 17, 48)
    assert parts.spatial_layers == (0, 1)
    assert_sums_to_embedding(model, images, parts)
    # Each layer's per-token terms add up to the same layer's per-head terms.
    for index, layer in enumerate(parts.spatial_layers):
        assert torch.allclose(parts.spatial[:, index].sum(1), parts.attn[:, layer].sum(1), atol=1e-6)


@pytest.mark.parametrize("name", ["ViT-B-32", "ViT-B-16"])
def test_paper_architectures_sum_to_normalised_embedding(name):
    torch.manual_seed(0)
    model = randomise_affine(open_clip.create_model(name)).eval()
    images = images_for(model, 1)
    parts = decompose(model, images)
    assert parts.attn.shape == (1, 12, 12, 512) and parts.mlp.shape == (1, 13, 512) and parts.spatial is None
    assert (parts.attn.sum((1, 2)) + parts.mlp.sum(1) - parts.embedding).abs().max().item() < TOLERANCE
    # One forward only (slow machine): the model's own encoder, computed separately, must agree.
    with torch.no_grad():
        reference = model.encode_image(images, normalize=True)
    assert (parts.embedding - reference).abs().max().item() < TOLERANCE


def test_terms_equal_the_blocks_own_outputs_projected_the_same_way():
    """Per-head terms summed over heads = the attention module's CLS output (captured by hooks on an ordinary
    forward) pushed through the same linearised ln_post; likewise each MLP output and the embedding term."""
    model = tiny_clip(ls_init_value=0.3, quick_gelu=True)
    images = images_for(model, 2)
    visual = model.visual
    captured: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for index, block in enumerate(visual.transformer.resblocks):
            handles.append(block.attn.register_forward_hook(
                lambda module, inputs, output, i=index: captured.__setitem__(f"attn{i}", output[0][:, 0].detach())))
            handles.append(block.mlp.register_forward_hook(
                lambda module, inputs, output, i=index: captured.__setitem__(f"mlp{i}", output[:, 0].detach())))
        handles.append(visual.ln_pre.register_forward_hook(
            lambda module, inputs, output: captured.__setitem__("pre", output[:, 0].detach())))
        with torch.no_grad():
            model.encode_image(images)
    finally:
        for handle in handles:
            handle.remove()
    parts = decompose(model, images)
    post, n_terms = parts.post_ln, 5
    blocks = visual.transformer.resblocks
    assert torch.allclose(parts.mlp[:, 0], post.apply(captured["pre"], 1 / n_terms), atol=1e-6)
    for i, block in enumerate(blocks):
        with torch.no_grad():
            attn_expected = post.apply(block.ls_1(captured[f"attn{i}"]), 1 / n_terms)
            mlp_expected = post.apply(block.ls_2(captured[f"mlp{i}"]), 1 / n_terms)
        assert torch.allclose(parts.attn[:, i].sum(1), attn_expected, atol=1e-6)
        assert torch.allclose(parts.mlp[:, i + 1], mlp_expected, atol=1e-6)
        # Heads really differ from each other (a bug spreading one total evenly would pass the sums).
        assert (parts.attn[:, i, 0] - parts.attn[:, i, 1]).abs().max() > 1e-3


def test_per_head_spatial_terms_sum_to_each_head():
    model = tiny_clip()
    images = images_for(model, 2)
    parts = decompose(model, images, spatial_layers=(1,), spatial_per_head=True)
    assert parts.spatial.shape == (2, 1, 4, 17, 48)
    assert torch.allclose(parts.spatial[:, 0].sum(2), parts.attn[:, 1], atol=1e-6)
    summed = decompose(model, images, spatial_layers=(1,))
    assert torch.allclose(parts.spatial.sum(2), summed.spatial, atol=1e-6)


def test_leaves_the_model_as_it_was():
    model = tiny_clip()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = images_for(model, 2)
    decompose(model, images, spatial_layers=(0,))
    assert model.training and model.visual.transformer.resblocks[0].training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


@pytest.mark.parametrize("vision, field", [
    ({"pool_type": "avg"}, "visual.pool_type"),
    ({"qk_norm": True}, "visual.transformer.resblocks.0"),
    ({"attentional_pool": True, "attn_pooler_queries": 4, "attn_pooler_heads": 2}, "visual.attn_pool"),
])
def test_unsupported_towers_raise_clear_errors(vision, field):
    model = tiny_clip(**vision)
    with pytest.raises(InputError) as err:
        decompose(model, images_for(model, 1))
    assert err.value.field == field


def test_resnet_tower_and_bad_layers_raise():
    torch.manual_seed(0)
    resnet = open_clip.model.CLIP(embed_dim=32, vision_cfg={"image_size": 64, "layers": [1, 1, 1, 1], "width": 16,
                                                            "head_width": 16},
                                  text_cfg={"context_length": 8, "width": 32, "heads": 2, "layers": 1})
    with pytest.raises(InputError, match="VisionTransformer"):
        decompose(resnet, torch.zeros(1, 3, 64, 64))
    model = tiny_clip()
    with pytest.raises(InputError, match="spatial_layers"):
        decompose(model, images_for(model, 1), spatial_layers=(2,))


def _batches(images: torch.Tensor, size: int, fail_after: int | None = None):
    for index, start in enumerate(range(0, len(images), size)):
        if fail_after is not None and index == fail_after:
            raise RuntimeError("simulated failure")
        chunk = images[start:start + size]
        yield chunk, list(range(start, start + len(chunk))), [f"img{i}" for i in range(start, start + len(chunk))]


def test_write_shard_memory_maps_and_reloads(tmp_path):
    model = tiny_clip()
    images = images_for(model, 5)
    out = write_shard(tmp_path / "shard0", model, _batches(images, 2), n_images=5, spatial_layers=(1,))
    assert sorted(p.name for p in out.iterdir()) == ["attn.npy", "ids.npy", "labels.npy", "meta.json", "mlp.npy",
                                                    "spatial.npy"]
    loaded = load_decomposition(out)
    whole = decompose(model, images, spatial_layers=(1,))
    assert isinstance(loaded["attn"], np.memmap)
    np.testing.assert_allclose(loaded["attn"], whole.attn.numpy(), atol=1e-6)
    np.testing.assert_allclose(loaded["mlp"], whole.mlp.numpy(), atol=1e-6)
    np.testing.assert_allclose(loaded["spatial"], whole.spatial.numpy(), atol=1e-6)
    assert loaded["labels"].tolist() == [0, 1, 2, 3, 4]
    assert loaded["ids"].tolist() == [f"img{i}" for i in range(5)]
    assert json.loads((out / "meta.json").read_text())["spatial_layers"] == [1]
    assert tower_shape(model) == {"layers": 2, "heads": 4, "tokens": 17, "dim": 48}


def test_write_shard_leaves_nothing_on_failure(tmp_path):
    model = tiny_clip()
    images = images_for(model, 5)
    with pytest.raises(RuntimeError, match="simulated"):
        write_shard(tmp_path / "shard0", model, _batches(images, 2, fail_after=2), n_images=5)
    assert list((tmp_path / "shard0").iterdir()) == []
    with pytest.raises(InputError, match="5 images"):
        write_shard(tmp_path / "shard1", model, _batches(images[:4], 2), n_images=5)
    assert list((tmp_path / "shard1").iterdir()) == []
    with pytest.raises(InputError, match="meta.json"):
        load_decomposition(tmp_path / "shard1")


def test_decompose_command_writes_npz(tmp_path):
    from clipxai.commands import decompose as command

    config = {"embed_dim": 48,
              "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 16},
              "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "tiny.json").write_text(json.dumps(config))
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 128, 255)]):
        paths.append(str(tmp_path / f"im{i}.png"))
        Image.new("RGB", (40, 36), colour).save(paths[-1])
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    out = tmp_path / "d.npz"
    args = parser.parse_args(["--model", str(tmp_path / "tiny.json"), "--image", *paths, "--out", str(out),
                              "--spatial-layers", "-1", "--batch-size", "1"])
    assert command.run(args) == 0
    with np.load(out) as data:
        assert data["attn"].shape == (2, 2, 4, 48) and data["mlp"].shape == (2, 3, 48)
        assert data["spatial"].shape == (2, 1, 17, 48) and data["spatial_layers"].tolist() == [1]
        assert data["image_paths"].tolist() == paths
        total = data["attn"].sum((1, 2)) + data["mlp"].sum(1)
        np.testing.assert_allclose(total, data["embedding"], atol=TOLERANCE)
        np.testing.assert_allclose(np.linalg.norm(data["embedding"], axis=1), 1, atol=1e-5)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    args = parser.parse_args(["--model", str(tmp_path / "tiny.json"), "--image", str(bad), "--out", str(out)])
    with pytest.raises(InputError, match="bad.png"):
        command.run(args)


def test_segmentation_maps_from_all_layers_patch_terms():
    from clipxai.models.decompose import class_maps, patch_terms

    model = tiny_clip()
    images = images_for(model, 2)
    parts = decompose(model, images, spatial_layers=range(2))
    patches = patch_terms(parts.spatial)
    assert patches.shape == (2, 16, 48)
    # Patches + the CLS token's own terms + MLP terms make up the whole embedding.
    cls_terms = parts.spatial[:, :, 0].sum(1)
    assert torch.allclose(patches.sum(1) + cls_terms + parts.mlp.sum(1), parts.embedding, atol=1e-5)
    per_head = decompose(model, images, spatial_layers=range(2), spatial_per_head=True)
    assert torch.allclose(patch_terms(per_head.spatial), patches, atol=1e-6)

    classifier = torch.randn(48, 5, generator=torch.Generator().manual_seed(3))
    maps, predicted = class_maps(patches, classifier, parts.embedding, (4, 4))
    assert maps.shape == (2, 4, 4)
    assert predicted.tolist() == (parts.embedding @ classifier).argmax(1).tolist()
    scores = patches @ classifier
    for b in range(2):
        expected = scores[b, :, predicted[b]] - scores[b].mean(1)
        assert torch.allclose(maps[b].flatten(), expected, atol=1e-6)
    # A patch written along the predicted class's direction is where the map peaks (row-major grid order).
    synthetic = torch.zeros(1, 16, 48)
    synthetic[0, 6] = classifier[:, 2] * 3
    synthetic[0, 9] = classifier[:, 4] * 3
    maps, predicted = class_maps(synthetic, classifier, classifier[:, 2][None], (4, 4))
    assert predicted.item() == 2 and maps[0].argmax().item() == 6 and maps[0, 1, 2] == maps.max()
    with pytest.raises(InputError, match="grid"):
        class_maps(patches, classifier, parts.embedding, (3, 3))
