"""CLIPpy as an open_clip model: the real config builds offline (random weights) and gives dense features with the
replication's image head; the released checkpoint's key layout converts and loads strictly (tiny stand-in); the
tokenizer's offline absence is one clear error."""

from __future__ import annotations

import json
from types import SimpleNamespace

import open_clip
import pytest
import timm.models
import torch
import torch.nn.functional as F

from clipxai.errors import InputError
from clipxai.models import clippy
from clipxai.models.registry import load_model
from clipxai.segmentation.dense import patch_features

torch.set_num_threads(1)

TINY = "clippy-test-tiny"
WORDS = ["a", "an", "photo", "of", "red", "circle", "dog", "background", "aeroplane"]


def clippy_vit_test_tiny(pretrained: bool = False, **kwargs):
    """CLIPpy's image head on a tiny ViT (32 px, 8 px patches, 2 blocks, width 32)."""
    return clippy.clippy_vit(clippy.DINO_INIT, pretrained, img_size=32, patch_size=8, embed_dim=32, depth=2,
                             num_heads=2, **kwargs)


if not timm.models.is_model("clippy_vit_test_tiny"):
    timm.models.register_model(clippy_vit_test_tiny)


@pytest.fixture(scope="module")
def real_config_model():
    """The real clippy-B-16 config, random weights, text config from the shipped copy (no hub access)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(clippy, "_hub_cached", lambda repo, filename: False)
        clippy.register()
        cfg = open_clip.get_model_config(clippy.MODEL_NAME)
        model = open_clip.create_model(clippy.MODEL_NAME, pretrained_text=False).eval()
    return cfg, model


def test_real_config_builds_offline_with_clippy_towers(real_config_model):
    cfg, model = real_config_model
    assert cfg["text_cfg"]["hf_model_name"] == str(clippy.SHIPPED_TEXT_CONFIG_DIR)
    trunk = model.visual.trunk
    assert trunk.patch_embed.grid_size == (14, 14) and trunk.embed_dim == 768 and len(trunk.blocks) == 12
    assert model.text.config.model_type == "t5" and model.text.config.d_model == 768
    assert model.text.config.num_layers == 12 and model.text.config.vocab_size == 32128
    # Sentence-T5's dense layer: 768 -> 768 without bias; mean pooling over unmasked tokens
    assert isinstance(model.text.proj, torch.nn.Linear) and model.text.proj.bias is None
    assert type(model.text.pooler).__name__ == "MeanPooler"


def test_real_config_dense_features_and_max_pooled_embedding(real_config_model):
    _, model = real_config_model
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    loaded = SimpleNamespace(model=model, name=clippy.MODEL_NAME)
    with torch.no_grad():
        dense = patch_features(loaded, images)
        tokens = model.visual.trunk.forward_features(images)  # final norm applied to every token
        embedding = model.encode_image(images)
    assert dense.shape == (2, 196, 768)
    torch.testing.assert_close(dense.norm(dim=-1), torch.ones(2, 196))
    torch.testing.assert_close(dense, F.normalize(tokens[:, 1:], dim=-1))
    # the replication's image embedding: max over ALL normed tokens, class token included, no projection
    torch.testing.assert_close(embedding, tokens.amax(dim=1))
    assert not torch.allclose(embedding, tokens[:, 1:].amax(dim=1))  # the class token does take part
    tokens_ids = torch.tensor([[5, 9, 13, 1, 0, 0], [7, 1, 0, 0, 0, 0]])
    with torch.no_grad():
        text = model.encode_text(tokens_ids)
    assert text.shape == (2, 768)


def test_tokenizer_missing_offline_is_one_input_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(clippy, "_hub_cached", lambda repo, filename: False)
    with pytest.raises(InputError) as err:
        clippy.load(clippy.MODEL_NAME)
    assert "tokenizer" in str(err.value) and "prefetch_text_tower" in str(err.value)


# ------------------------------------------------------------------------------------- tiny CLIPpy-like model


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory):
    """A tiny T5 config and a word-level tokenizer with T5's special ids (pad 0, </s> 1), as local folders."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    root = tmp_path_factory.mktemp("tiny_text")
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    (root / "tokenizer").mkdir()
    tokenizer.save(str(root / "tokenizer" / "tokenizer.json"))
    (root / "tokenizer" / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<pad>", "eos_token": "</s>",
         "unk_token": "<unk>", "model_max_length": 64}))
    t5 = json.loads((clippy.SHIPPED_TEXT_CONFIG_DIR / "config.json").read_text())
    t5.update(d_model=32, d_ff=64, d_kv=16, num_heads=2, num_layers=2, num_decoder_layers=1,
              vocab_size=len(vocab))
    (root / "t5").mkdir()
    (root / "t5" / "config.json").write_text(json.dumps(t5))
    return root


@pytest.fixture(scope="module")
def tiny_name(tiny_text):
    cfg = json.loads(clippy.CONFIG_PATH.read_text())
    cfg["embed_dim"] = 32
    cfg["vision_cfg"].update(timm_model_name="clippy_vit_test_tiny", image_size=32)
    cfg["text_cfg"].update(hf_model_name=str(tiny_text / "t5"), hf_tokenizer_name=str(tiny_text / "tokenizer"),
                           context_length=12)
    return clippy.register(TINY, cfg)


def _original_layout(state: dict) -> dict:
    """The key layout of the released clippy_5k.pt: DDP prefix, SentenceTransformer text tower, optimiser state."""
    original = {}
    for key, value in state.items():
        if key.startswith("text.transformer."):
            original["module.text.0.auto_model.encoder." + key[len("text.transformer."):]] = value
        elif key.startswith("text.proj."):
            original["module.text.2.linear." + key[len("text.proj."):]] = value
        else:
            original["module." + key] = value
    original["module.text.0.auto_model.shared.weight"] = state["text.transformer.embed_tokens.weight"]
    return {"epoch": 5, "name": "clippy001", "state_dict": original, "optimizer": {"state": {}, "param_groups": []}}


def _embeddings(loaded, images, prompts):
    with torch.no_grad():
        return loaded.model.encode_image(images), loaded.model.encode_text(loaded.tokenizer(prompts))


def test_released_checkpoint_layout_loads_strictly(tiny_name, tmp_path):
    torch.manual_seed(0)
    source = clippy.load(tiny_name)
    assert clippy.is_clippy(tiny_name) and source.grid == (4, 4) and source.image_size == 32
    checkpoint = tmp_path / "clippy_tiny.pt"
    torch.save(_original_layout(source.model.state_dict()), checkpoint)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    prompts = ["a photo of a dog", "a photo of an aeroplane"]
    expected = _embeddings(source, images, prompts)

    torch.manual_seed(1)  # a different random init: only the checkpoint can make the outputs match
    fresh = clippy.load(tiny_name)
    assert not torch.allclose(_embeddings(fresh, images, prompts)[0], expected[0])
    reloaded = clippy.load(tiny_name, checkpoint=checkpoint)
    for got, want in zip(_embeddings(reloaded, images, prompts), expected):
        torch.testing.assert_close(got, want)

    # the converted .safetensors loads through the shared registry too (strict open_clip load)
    converted = clippy.save_converted(checkpoint, tmp_path / "clippy_tiny.safetensors")
    via_registry = load_model(tiny_name, checkpoint=str(converted))
    for got, want in zip(_embeddings(via_registry, images, prompts), expected):
        torch.testing.assert_close(got, want)


def test_tokens_end_with_t5_eos_and_padding_is_masked(tiny_name):
    loaded = clippy.load(tiny_name)
    tokens = loaded.tokenizer(["a red circle", "a red circle background dog"])
    assert tokens.shape == (2, 12) and tokens[0, 3] == 1 and tokens[0, 4:].eq(0).all()
    with torch.no_grad():
        short = loaded.model.encode_text(tokens[:1])
        # the same text with its padding cut off: mean pooling must ignore pad tokens
        unpadded = loaded.model.encode_text(tokens[:1, :4])
    torch.testing.assert_close(short, unpadded)


def test_convert_refuses_foreign_keys_and_keeps_shared_embedding():
    embedding = torch.randn(5, 4)
    converted = clippy.convert_state_dict({"state_dict": {"module.text.0.auto_model.shared.weight": embedding,
                                                          "module.logit_scale": torch.tensor(1.0)}})
    assert converted["text.transformer.embed_tokens.weight"] is embedding and "logit_scale" in converted
    with pytest.raises(InputError) as err:
        clippy.convert_state_dict({"visual.conv1.weight": torch.zeros(1)}, "foreign.pt")
    assert "foreign.pt" in str(err.value) and "visual.conv1.weight" in str(err.value)


def test_catalogued_tag_resolves_through_the_fetch_stamp(tmp_path):
    weights = tmp_path / "clippy_5k.pt"
    weights.write_bytes(b"x")
    stamp = tmp_path / "weights.json"
    stamp.write_text(json.dumps({"files": [{"path": str(weights), "size": 1, "sha256": "0"}]}))
    assert clippy.resolve_weights("clippy_5k", None, stamp) == weights
    assert clippy.resolve_weights(None, None) is None
    with pytest.raises(InputError):
        clippy.resolve_weights("laion2b_s34b_b88k", None)  # an open_clip tag, not a catalogued checkpoint
