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


def test_method_table_is_the_attribution_registry():
    # the torch-free copy the workflow checks configs against must list every method with its parameters
    from clipxai.attribution import REGISTRY

    assert cfg.METHOD_PARAMETERS == {name: method.defaults for name, method in REGISTRY.items()}
    assert cfg.METHOD_MAPS_TEXT == {name: method.maps_text for name, method in REGISTRY.items()}
    assert not cfg.METHOD_MAPS_TEXT["dense"] and cfg.METHOD_MAPS_TEXT["chefer2021"]


@pytest.mark.parametrize("mutate, key, expected", [
    (lambda d: d["grounding"]["methods"].update(chefr2021={"start_layer": -1}),
     "grounding.methods.chefr2021", "a method name (chefer2021, "),
    (lambda d: d["grounding"]["methods"].update(mine={"method": "rolout"}),
     "grounding.methods.mine.method", "got 'rolout'"),
    (lambda d: d["grounding"]["methods"]["chefer2021"].update(start_layr=0),
     "grounding.methods.chefer2021.start_layr", "a parameter of method chefer2021 (known: start_layer)"),
    (lambda d: d["grounding"]["methods"]["chefer2021"].update(start_layer="last"),
     "grounding.methods.chefer2021.start_layer", "an integer, got 'last'"),
    (lambda d: d["grounding"]["methods"]["chefer2021"].update(start_layer=True),
     "grounding.methods.chefer2021.start_layer", "an integer, got True"),
    (lambda d: d["grounding"]["methods"]["rollout-last-grad-negative"].update(polarity="negatve"),
     "grounding.methods.rollout-last-grad-negative.polarity", "one of positive, negative"),
    (lambda d: d["heads"]["segmentation"]["methods"].update(decompositon={}),
     "heads.segmentation.methods.decompositon", "a method name"),
    (lambda d: d["heads"]["segmentation"]["methods"].update(decomposition={"layers": 2}),
     "heads.segmentation.methods.decomposition.layers", "a parameter of method decomposition (known: none)"),
    (lambda d: d["datasets"].update({"my shapes": d["datasets"]["shapes"]}), "datasets.my shapes",
     "letters, digits, '_' and '-' only"),
    (lambda d: d["models"].update({"toy/2": d["models"]["toy"]}), "models.toy/2", "letters, digits"),
    (lambda d: d["grounding"]["methods"].update({"dense.v2": {"method": "dense"}}), "grounding.methods.dense.v2",
     "letters, digits"),
])
def test_misspelt_method_parameter_or_unsafe_name_is_caught_in_the_config(mutate, key, expected):
    with pytest.raises(InputError) as err:
        _validate(mutate)
    message = str(err.value)
    assert message.startswith(f"config.yaml: {key}: expected"), message
    assert expected in message and "\n" not in message


def test_known_methods_under_other_labels_and_the_decomposition_map_pass():
    data = _validate(lambda d: d["grounding"]["methods"].update(
        {"cam-neg": {"method": "gradcam-vit", "polarity": "negative"}, "rnd_2": {"method": "random", "seed": 3}}))
    assert cfg.method_specs(data)["cam-neg"] == ("gradcam-vit", {"polarity": "negative"})
    assert "decomposition" in data["heads"]["segmentation"]["methods"]
