"""Every job loads exactly the bytes fetch-weights recorded (issue 12): a model entry's `checkpoint:` is stamped
with its size and sha256, and load_model given the stamp loads that file, refusing it once it changed."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch

from clipxai import cli
from clipxai.errors import InputError
from clipxai.models.registry import load_model

TINY = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}


@pytest.fixture
def tiny_checkpoint(tmp_path):
    name = "clipxai-stamp-tiny"
    open_clip.factory._MODEL_CONFIGS[name] = TINY
    torch.manual_seed(3)
    model = open_clip.create_model(name)
    path = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), path)
    return name, model.state_dict(), path


def test_checkpoint_stamp_is_what_every_job_loads(tiny_checkpoint, tmp_path):
    name, state, path = tiny_checkpoint
    stamp = tmp_path / "weights.json"
    assert cli.main(["fetch-weights", "--model", name, "--checkpoint", str(path), "--stamp", str(stamp)]) == 0
    record = json.loads(stamp.read_text())
    assert record["files"][0]["path"] == str(path) and record["pretrained"] is None
    loaded = load_model(name, checkpoint=str(stamp))
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, state[key]), key
    # other bytes under the recorded name: refused, never silently loaded
    other = open_clip.create_model(name).state_dict()
    torch.save({k: v + 1 for k, v in other.items()}, path)
    with pytest.raises(InputError, match="sha256"):
        load_model(name, checkpoint=str(stamp))


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    code = cli.main(["fetch-weights", "--model", "ViT-B-32", "--checkpoint", str(tmp_path / "nope.pt"),
                     "--stamp", str(tmp_path / "w.json")])
    assert code == 2 and "nope.pt" in capsys.readouterr().err and not (tmp_path / "w.json").exists()


def test_verbs_take_the_stamp_as_checkpoint_the_way_rules_pass_it(tmp_path, capsys):
    """Rules pass `--checkpoint resources/models/<m>/weights.json` to every verb: the up-front argument check must
    accept a stamp (and refuse one whose file went missing), not only .pt/.safetensors files."""
    name = "clipxai-stamp-tiny-vocab"  # the real tokenizer's ids need the real vocabulary size
    open_clip.factory._MODEL_CONFIGS[name] = {**TINY, "text_cfg": {**TINY["text_cfg"], "vocab_size": 49408}}
    path = tmp_path / "tiny.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in open_clip.create_model(name).state_dict().items()}, str(path))
    stamp = tmp_path / "weights.json"
    assert cli.main(["fetch-weights", "--model", name, "--checkpoint", str(path), "--stamp", str(stamp)]) == 0
    out = tmp_path / "classifier.npy"
    data = tmp_path / "folders"
    from clipxai.data import imagenet
    import numpy as np

    imagenet.write_class_folders(data, [(c, f"{c}_0.JPEG", np.zeros((8, 8, 3), np.uint8)) for c in ("a", "b")],
                                 {"a": "cat", "b": "dog"})
    code = cli.main(["zeroshot-classifier", "--data", str(data), "--format", "imagenet", "--model", name,
                     "--checkpoint", str(stamp), "--templates", "caption", "--out", str(out)])
    assert code == 0 and np.load(out).shape == (16, 2)
    path.unlink()
    code = cli.main(["zeroshot-classifier", "--data", str(data), "--format", "imagenet", "--model", name,
                     "--checkpoint", str(stamp), "--templates", "caption", "--out", str(tmp_path / "again.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "weights.json" in err and "fetch the weights again" in err


def test_sha256_file_is_the_digest_of_the_bytes(tmp_path):
    import hashlib

    from clipxai.io import sha256_file

    path = tmp_path / "blob.bin"
    payload = bytes(range(256)) * 9000  # more than one 1 MiB block
    path.write_bytes(payload)
    assert sha256_file(path) == hashlib.sha256(payload).hexdigest()
