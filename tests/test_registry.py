"""The registry loads open_clip names, config JSONs and saved folders the same way, with clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from clipxai.errors import InputError
from clipxai.models import toy
from clipxai.models.registry import load_model

TINY = toy.tiny_config(image_size=32, patch_size=8, width=32, layers=1, head_width=16, text_width=32,
                       text_layers=1, text_heads=2, embed_dim=16)


def test_config_json_gives_geometry_from_the_model(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    lm = load_model(str(path))
    assert (lm.image_size, lm.grid, lm.context_length) == (32, (4, 4), 16)
    assert lm.tokenizer(["a red circle"]).shape == (1, 16)
    assert lm.preprocess.transforms[0].size in (32, [32], (32, 32))


def test_saved_folder_round_trips_weights(tmp_path):
    import open_clip

    torch.manual_seed(0)
    model = open_clip.model.CLIP(**TINY).eval()
    toy.save(model, TINY, tmp_path / "m")
    lm = load_model(str(tmp_path / "m"))
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(lm.model.encode_image(image), model.encode_image(image), atol=1e-6)
    # the same weights through --checkpoint on the bare config
    (tmp_path / "cfg.json").write_text(json.dumps(TINY))
    lm2 = load_model(str(tmp_path / "cfg.json"), checkpoint=str(tmp_path / "m" / "open_clip_model.safetensors"))
    with torch.no_grad():
        assert torch.allclose(lm2.model.encode_image(image), model.encode_image(image), atol=1e-6)


@pytest.mark.parametrize("kwargs, field", [
    (dict(model="no-such-model"), "--model"),
    (dict(model="ViT-B-32", checkpoint="/nonexistent.pt"), "--checkpoint"),
    (dict(model="ViT-B-32", pretrained="openai", checkpoint="x.pt"), "--checkpoint"),
])
def test_bad_model_arguments_are_one_line_errors(kwargs, field):
    with pytest.raises(InputError) as err:
        load_model(**kwargs)
    assert f": {field}: expected" in str(err.value)


def test_config_json_missing_key_names_it(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"embed_dim": 8, "vision_cfg": {}}))
    with pytest.raises(InputError, match="broken.json: text_cfg: expected"):
        load_model(str(path))


def test_importing_the_model_modules_registers_nothing_with_open_clip():
    # CLIPpy is made an open_clip name when it is loaded, not as a side effect of an import
    import subprocess
    import sys

    code = ("import open_clip, timm; import clipxai.models.registry, clipxai.models.clippy; "
            "assert 'clippy-B-16' not in open_clip.list_models(); "
            "assert not timm.models.is_model('clippy_vit_base_patch16_224')")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_model_dispatches_on_the_first_matching_loader(tmp_path, monkeypatch):
    from clipxai.models import registry

    assert [loader.name for loader in registry.LOADERS] == ["clippy", "open_clip"]
    assert registry.LOADERS[0].matches("clippy-B-16") and not registry.LOADERS[0].matches("ViT-B-32")
    seen = []
    fake = registry.Loader("fake", lambda model: model == "fake-model",
                           lambda *args, **kwargs: seen.append((args, kwargs)) or "built")
    monkeypatch.setattr(registry, "LOADERS", (fake, *registry.LOADERS))
    assert registry.load_model("fake-model", "tag", None, "cpu", weights_stamp="w.json") == "built"
    assert seen == [(("fake-model", "tag", None, "cpu"), {"weights_stamp": "w.json"})]
