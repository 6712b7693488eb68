"""Figure verbs on a tiny shapes world and a tiny random CLIP: files, sidecars, determinism, what the maps are."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from clipxai.cli import main  # noqa: E402
from clipxai.commands import _saliency  # noqa: E402
from clipxai.errors import InputError  # noqa: E402
from clipxai.models import toy  # noqa: E402
from clipxai.models.registry import load_model  # noqa: E402
from clipxai.viz import saliency  # noqa: E402
from clipxai.viz.provenance import REQUIRED_KEYS, read_sidecar  # noqa: E402

torch.set_num_threads(1)
SALIENCY_VERBS = ["figure-layers", "figure-methods", "figure-polarity", "figure-perword"]
LAYERS = 2


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 4-image shapes world (COCO-panoptic + PNG layout) and a tiny random ViT CLIP saved as a model folder."""
    root = tmp_path_factory.mktemp("figures")
    data = root / "shapes"
    assert main(["make-shapes", "--out", str(data), "--n-train", "4", "--n-val", "4", "--image-size", "32",
                 "--held-out", ""]) == 0
    config = toy.tiny_config(image_size=32, patch_size=8, width=32, layers=LAYERS, head_width=16, text_width=32,
                             text_layers=1, text_heads=2, embed_dim=32)
    spec = root / "tiny.json"
    spec.write_text(json.dumps(config))
    torch.manual_seed(0)
    model = load_model(str(spec))
    toy.save(model.model, config, root / "model")
    return {"data": str(data), "model": str(root / "model"), "root": root}


def _run(world, verb, out, *extra):
    return main([verb, "--data", world["data"], "--model", world["model"], "--n", "2", "--label", "shapes / tiny",
                 "--out", str(out), *extra])


@pytest.mark.parametrize("verb", SALIENCY_VERBS)
def test_saliency_figure_writes_png_pdf_and_a_complete_sidecar(world, verb, tmp_path):
    out = tmp_path / "figure.png"
    assert _run(world, verb, out) == 0
    with Image.open(out) as image:
        assert image.width > 100 and image.height > 100
    assert out.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    meta = read_sidecar(out)
    assert set(REQUIRED_KEYS) <= set(meta)
    assert meta["rule"] == verb.replace("-", "_") and meta["command"] == f"clipxai {verb}"
    assert meta["section"] == "saliency" and len(meta["examples"]) == 2
    # what it read: the narratives file and the model folder's files
    assert meta["inputs"][0].endswith("annotations/png_coco_val2017.json")
    assert any(p.endswith("open_clip_model.safetensors") for p in meta["inputs"])
    assert "shapes / tiny" in meta["title"]


def test_same_inputs_give_byte_identical_figures(world, tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    assert _run(world, "figure-methods", first) == 0
    assert _run(world, "figure-methods", second) == 0
    assert first.read_bytes() == second.read_bytes()
    assert first.with_suffix(".pdf").read_bytes() == second.with_suffix(".pdf").read_bytes()


def test_layer_maps_have_one_map_per_block_and_the_last_is_gradcam(world):
    from clipxai import attribution
    from clipxai.commands.figure_layers import block_maps

    model = load_model(world["model"])
    examples = saliency.load_examples(world["data"], "val", 2)
    images, tokens = _saliency.model_inputs(model, examples, [e.phrase for e in examples])
    attention, weighted = block_maps(model, images, tokens)
    assert len(attention) == len(weighted) == LAYERS
    assert all(m.shape == (2, *model.grid) for m in attention + weighted)
    # attention rows are probabilities over all tokens: the patch part sums to at most 1
    assert all(float(m.sum(dim=(1, 2)).max()) <= 1 + 1e-5 for m in attention)
    # the last block's gradient-weighted attention is GradCAM on the last block (cosine objective)
    gradcam = attribution.get("gradcam-vit").attribute(model, images, tokens).image
    torch.testing.assert_close(weighted[-1], gradcam, rtol=1e-4, atol=1e-6)


def test_examples_are_the_first_images_with_their_grounded_phrases(world):
    from clipxai.data import png

    examples = saliency.load_examples(world["data"], "val", 3)
    dataset = png.load(world["data"], "val")
    first_images = list(dict.fromkeys(e.image_id for e in dataset.entries))[:3]
    assert [int(e.entry_id.split("_")[0]) for e in examples] == first_images
    for example in examples:
        phrases = [e.utterance for e in dataset.entries if e.entry_id.startswith(example.entry_id.rsplit("_", 1)[0])]
        assert example.phrase == phrases[0]
        # per-word saliency asks about the content words of the grounded phrases only, never the glue between them
        assert example.words and all(any(w in p for p in phrases) for w in example.words)
        assert not set(example.words) & saliency.STOP_WORDS and "next" not in example.words
    assert saliency.content_words(["a red circle", "the Red star!", "two blue"], 3) == ["red", "circle", "star"]


def test_text_from_a_data_set_is_drawn_literally_not_as_mathtext():
    example = saliency.Example(entry_id="1_0_0", image=Image.new("RGB", (32, 32)), phrase=r"$\frac{broken",
                               caption="", words=[])
    fig, axes = saliency.grid_figure(1, 2)
    saliency.draw_input(axes[0, 0], example, example.phrase)
    saliency.draw_map(axes[0, 1], example, torch.zeros(4, 4), r"$x^{2")
    fig.canvas.draw()  # mathtext parsing of either title would raise here
    assert axes[0, 0].get_title() == '"$\\frac{broken"'
    assert [t.get_text() for t in axes[0, 1].texts] == ["no signal"]
    plt.close(fig)


def test_grounding_bars_from_the_table(tmp_path):
    rows = []
    for method in ("chefer2021", "random"):
        for direction in ("t2i", "i2t"):
            for mode in ("faithful", "corrected"):
                rows.append({"dataset": "shapes", "model": "toy", "method": method, "direction": direction,
                             "mode": mode, "n_entries": 5, "n_excluded": 0, "macro_mean": 0.4, "macro_lo": 0.3,
                             "macro_hi": 0.5, "fg_mean": 0.2, "fg_lo": 0.1, "fg_hi": 0.3})
    table = tmp_path / "grounding.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    out = tmp_path / "bars.png"
    assert main(["figure-grounding-bars", "--table", str(table), "--out", str(out)]) == 0
    meta = read_sidecar(out)
    assert meta["inputs"] == [str(table)] and meta["rule"] == "figure_grounding_bars"
    pd.DataFrame(rows).drop(columns=["macro_hi"]).to_csv(table, index=False)
    with pytest.raises(InputError, match="macro_hi"):
        from clipxai.cli import build_parser

        parser, runners = build_parser()
        runners["figure-grounding-bars"](parser.parse_args(["figure-grounding-bars", "--table", str(table),
                                                            "--out", str(out)]))


def test_unknown_method_is_refused_before_any_work(world, tmp_path, capsys):
    assert _run(world, "figure-methods", tmp_path / "x.png", "--methods", "no-such-method") == 2
    assert "no-such-method" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
