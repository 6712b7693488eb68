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
    methods = ["random", CHEFER_ALL, "rollout"]
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
    assert [str(_arrays(p)["method"]) for p in together] == ["random", "chefer2021", "rollout"]
    assert json.loads(str(_arrays(together[1])["params"])) == {"start_layer": 0}
    assert not np.array_equal(_arrays(together[1])["image_grid"], _arrays(together[2])["image_grid"])


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
