"""`clipxai ground` with several methods: one model and data load, each method's maps file as it writes alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clipxai import cli

torch.set_num_threads(1)

MODEL = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2,
                                         "head_width": 32},
         "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
CHEFER_ALL = json.dumps({"method": "chefer2021", "params": {"start_layer": 0}})
BROKEN = json.dumps({"method": "chefer2021", "params": {"start_layer": 99}})  # the tiny model has 2 blocks


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from clipxai.data import shapes

    root = tmp_path_factory.mktemp("ground")
    shapes.write_coco_png(root / "shapes", shapes.ShapesConfig(seed=2, image_size=32), n_train=2, n_val=3,
                          progress=False)
    (root / "tiny.json").write_text(json.dumps(MODEL))
    return root


def _ground(inputs, methods, outs, *extra):
    # A json config gives random weights: seed them the same in every run, so runs explain the same model.
    torch.manual_seed(0)
    return cli.main(["ground", "--data", str(inputs / "shapes"), "--model", str(inputs / "tiny.json"),
                     "--batch-size", "2", "--shards", "2", "--shard", "1", *extra,
                     *[a for m in methods for a in ("--method", m)], "--out", *map(str, outs)])


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def test_several_methods_write_the_maps_each_writes_alone(inputs, tmp_path):
    # chefer2021 at two start layers share one forward + backward, rollout and raw attention one forward
    methods = ["random", CHEFER_ALL, "rollout", "chefer2021", "raw-attention"]
    together = [tmp_path / "together" / f"{i}.npz" for i in range(len(methods))]
    assert _ground(inputs, methods, together) == 0
    for i, method in enumerate(methods):
        alone = tmp_path / "alone" / f"{i}.npz"
        assert _ground(inputs, [method], [alone]) == 0
        a, b = _arrays(together[i]), _arrays(alone)
        assert list(a) == list(b)
        for key in a:
            assert a[key].dtype == b[key].dtype and a[key].tobytes() == b[key].tobytes(), (method, key)
    first = _arrays(together[0])
    # shard 1 of 2 of the entries, both directions; the outputs are paired with the methods in order
    assert set(first["direction"]) == {"t2i", "i2t"} and len(first["entry_id"]) % 2 == 0
    assert [str(_arrays(p)["method"]) for p in together] == ["random", "chefer2021", "rollout", "chefer2021",
                                                              "raw-attention"]
    assert json.loads(str(_arrays(together[1])["params"])) == {"start_layer": 0}
    for i, j in ((1, 2), (1, 3), (2, 4)):  # methods sharing a trace still give their own maps
        assert not np.array_equal(_arrays(together[i])["image_grid"], _arrays(together[j])["image_grid"]), (i, j)


def test_shared_traces_compute_one_trace_per_inputs_and_objective(inputs):
    from clipxai.attribution import base
    from clipxai.models.registry import load_model

    torch.manual_seed(0)
    model = load_model(str(inputs / "tiny.json"), None, None, torch.device("cpu"))
    images = torch.randn(2, 3, 32, 32)
    texts = model.tokenizer(["a red circle", "a blue square"])
    alone = base.trace_attention(model, images, texts, base.similarity)
    with base.shared_traces():
        first = base.trace_attention(model, images, texts, base.similarity)
        assert base.trace_attention(model, images, texts, base.similarity) is first
        assert base.trace_attention(model, images, texts, base.clip_logit) is not first   # another objective
        assert base.trace_attention(model, images.clone(), texts, base.similarity) is not first  # other tensors
        assert base.trace_attention(model, images, texts, None) is not first
    assert base.trace_attention(model, images, texts, base.similarity) is not first  # the block is over
    for a, b in zip(alone.visual_grads + alone.text_grads + alone.visual_probs,
                    first.visual_grads + first.text_grads + first.visual_probs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("methods, outs, expected", [
    (["random", "rollout"], ["a.npz"], "one output per --method"),
    (["random", "rollout"], ["a.npz", "a.npz"], "a different file for each method"),
    (["random", "no-such-method"], ["a.npz", "b.npz"], "no-such-method"),
    (["random", BROKEN], ["a.npz", "b.npz"], "start_layer"),
])
def test_a_bad_method_or_output_list_writes_no_method_s_file(inputs, tmp_path, capsys, methods, outs, expected):
    assert _ground(inputs, methods, [tmp_path / o for o in outs]) == 2
    # the error is one line (after the progress bar where the failure came while explaining)
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("clipxai ground: error: ") and expected in errors[0], errors
    assert not list(tmp_path.iterdir())  # not even the good method's maps, nor a temporary file
