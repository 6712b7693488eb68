"""``clipxai attribute``: every image x every text, image-major; the maps file's layout; bad input as InputError."""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

import clipxai.attribution as attribution
from clipxai.commands import attribute
from clipxai.errors import InputError
from clipxai.models.registry import load_model

torch.set_num_threads(1)

CONFIG = {"embed_dim": 32,
          "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
          "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
TEXTS = ["a red circle", "a blue square and a green star"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("attribute")
    (root / "tiny.json").write_text(json.dumps(CONFIG))
    rng = np.random.default_rng(0)
    for name, shape in (("a.png", (40, 50, 3)), ("b.jpg", (32, 32, 3))):
        Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(root / name)
    (root / "broken.png").write_bytes(b"not an image")
    return root


def _run(files, *extra, texts=TEXTS, images=("a.png", "b.jpg"), out="maps.npz"):
    parser = argparse.ArgumentParser()
    attribute.add_arguments(parser)
    args = parser.parse_args(["--model", str(files / "tiny.json"), "--image", *[str(files / i) for i in images],
                              "--text", *texts, "--out", str(files / out), *extra])
    assert attribute.run(args) == 0
    return np.load(files / out, allow_pickle=False)


def test_maps_file_layout_and_pairing(files):
    torch.manual_seed(0)  # the model is re-created by the command with random weights: seed both the same
    maps = _run(files, "--method", "chefer2021", "--set", "start_layer=0", "--batch-size", "3")
    assert maps["image_relevance"].shape == (4, 32, 32) and maps["image_relevance"].dtype == np.float32
    assert maps["image_relevance_grid"].shape == (4, 4, 4)
    assert maps["tokens"].shape == (4, 16) and maps["text_relevance"].shape == (4, 14)
    assert [tuple(p) for p in maps["pairs"]] == [(str(files / i), t) for i in ("a.png", "b.jpg") for t in TEXTS]
    assert str(maps["method"]) == "chefer2021" and json.loads(str(maps["params"])) == {"start_layer": 0}
    relevance = maps["image_relevance"]
    assert np.allclose(relevance.reshape(4, -1).min(1), 0) and np.allclose(relevance.reshape(4, -1).max(1), 1)
    # text: the caption tokens only (3 for the first text, 7 for the second), summing to 1, NaN after
    for row, caption_length in enumerate([3, 7, 3, 7]):
        text = maps["text_relevance"][row]
        assert not np.isnan(text[:caption_length]).any() and np.isnan(text[caption_length:]).all()
        assert abs(text[:caption_length].sum() - 1) < 1e-5
    # the same as calling the method on the same preprocessed pair directly
    torch.manual_seed(0)
    model = load_model(str(files / "tiny.json"))
    image = model.preprocess(Image.open(files / "b.jpg").convert("RGB"))[None]
    direct = attribution.get("chefer2021", start_layer=0).attribute(model, image, model.tokenizer([TEXTS[1]]))
    np.testing.assert_allclose(maps["image_relevance_grid"][3], direct.image[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(maps["text_relevance"][3, :7], direct.text[0, 1:8].numpy(), atol=1e-6)


def test_image_only_method_writes_nan_text(files):
    maps = _run(files, "--method", "per-word", "--set", "word=red", images=("a.png",), out="perword.npz")
    assert np.isnan(maps["text_relevance"]).all() and maps["image_relevance_grid"].shape == (2, 4, 4)
    assert json.loads(str(maps["params"])) == {"word": "red", "polarity": "positive", "mode": "corrected"}
    assert np.abs(maps["image_relevance_grid"][1]).sum() == 0  # "red" is not in the second text


def test_long_caption_is_truncated_with_a_warning(files, caplog):
    long_text = "a red circle " * 10
    with caplog.at_level(logging.WARNING, logger="clipxai.commands.attribute"):
        maps = _run(files, "--method", "random", texts=[long_text], images=("a.png",), out="long.npz")
    warning = next(record.getMessage() for record in caplog.records if "truncated" in record.getMessage())
    assert "of 30 tokens" in warning and "a red circle a red circle a red ..." in warning
    assert long_text.strip() not in warning  # the first words, not the whole caption
    assert maps["tokens"][0, -1] == maps["tokens"].max()  # the end token still closes the window
    assert not np.isnan(maps["text_relevance"][0]).any()  # all 14 caption slots used


@pytest.mark.parametrize("image, expected", [("missing.png", "an existing image file"),
                                             ("broken.png", "a readable image file")])
def test_bad_images_are_input_errors(files, image, expected):
    with pytest.raises(InputError, match=expected):
        _run(files, "--method", "random", images=(image,), out="never.npz")
    assert not (files / "never.npz").exists()


def test_bad_parameters_are_input_errors(files):
    with pytest.raises(InputError, match="KEY=VALUE"):
        _run(files, "--method", "chefer2021", "--set", "start_layer", out="never.npz")
    with pytest.raises(InputError, match="one of"):
        _run(files, "--method", "no-such-method", out="never.npz")
    assert attribute.parse_params(["start_layer=-1", "word=red", "seed=3"]) == {"start_layer": -1, "word": "red",
                                                                                "seed": 3}
