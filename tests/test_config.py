"""Config validation: every typo or wrong type is one line naming the key; defaults are filled in."""

from __future__ import annotations

import copy

import pytest
import yaml

from clipxai import config as cfg
from clipxai.errors import InputError
from conftest import REPO

BASE = yaml.safe_load((REPO / "config.yaml").read_text())


def _validate(mutate):
    data = copy.deepcopy(BASE)
    mutate(data)
    return cfg.validate(data, source="config.yaml")


@pytest.mark.parametrize("config_file", ["config.yaml", "config/paper.yaml", "tests/data/config_tiny.yaml"])
def test_shipped_configs_are_valid(config_file):
    cfg.load(REPO / config_file)


def test_defaults_are_filled():
    data = _validate(lambda d: d.pop("threads"))
    assert data["threads"] == 2 and data["datasets"]["shapes"]["split"] == "val"


@pytest.mark.parametrize("mutate, key, expected", [
    (lambda d: d.update(sed=1), "sed", "a known key"),
    (lambda d: d.update(seed="x"), "seed", "integer"),
    (lambda d: d["datasets"]["shapes"].update(n_train="10k"), "datasets.shapes.n_train", "integer"),
    (lambda d: d["datasets"]["shapes"].pop("shards"), "datasets.shapes.shards", "present"),
    (lambda d: d.update(device="tpu"), "device", "one of auto, cpu, cuda"),
    (lambda d: d["grounding"].update(models=["nope"]), "grounding.models[0]", "a model defined under models"),
    (lambda d: d["models"]["toy"].update(train_on="missing"), "models.toy.train_on", "shapes data set"),
    (lambda d: d["datasets"]["shapes"].update(held_out=["red-star"]), "datasets.shapes.held_out.0", "pattern"),
])
def test_bad_config_names_the_key(mutate, key, expected):
    with pytest.raises(InputError) as err:
        _validate(mutate)
    message = str(err.value)
    assert message.startswith(f"config.yaml: {key}: expected"), message
    assert expected in message and "\n" not in message


def test_method_specs_split_registry_name_and_parameters():
    specs = cfg.method_specs(cfg.load(REPO / "config.yaml"))
    assert specs["chefer2021-all"] == ("chefer2021", {"start_layer": 0})
    assert specs["random"] == ("random", {})
