"""The workflow config's cross-references the schema cannot express (names defined in another section, data set
kinds that fit each protocol), checked once after the schema by rules/common.smk: the first mistake raises an
InputError of one line naming the key, printed as ``invalid configuration: <line>``.

Torch-free: the Snakefile parses with it.
"""

from __future__ import annotations

from clipxai.config import check_references, method_specs
from clipxai.data.sources import SOURCES
from clipxai.data.kinds import KINDS, kinds_serving
from clipxai.errors import InputError
from clipxai.workflow import plan


class ConfigMistake(InputError):
    """A cross-reference mistake worded ``<key>: <problem>`` (the key's path in the config, then what is wrong)."""

    def __init__(self, key: str, problem: str):
        super().__init__("config", key, problem)
        self.args = (f"{key}: {problem}",)


def _expected(key: str, expected: str) -> ConfigMistake:
    return ConfigMistake(key, f"expected {expected}")


def check_report(config: dict) -> None:
    """report.saliency_models names models."""
    for name in plan.saliency_models(config):
        if name not in config["models"]:
            raise ConfigMistake("report.saliency_models", f"{name!r} is not a model under models")


def check_segmentation_and_zeroshot(config: dict) -> None:
    """segmentation / zeroshot name models and data sets of the kinds they read; the user's ImageNet has a path."""
    datasets, models = config["datasets"], config["models"]
    for section, protocol in (("segmentation", "voc"), ("zeroshot", "zeroshot")):
        spec, kinds = plan.section(config, section), kinds_serving(protocol)
        for name in spec["datasets"]:
            if name not in datasets or datasets[name]["kind"] not in kinds:
                raise ConfigMistake(f"{section}.datasets", f"{name!r} is not a data set of kind {' or '.join(kinds)}")
        for name in spec["models"]:
            if name not in models:
                raise ConfigMistake(f"{section}.models", f"{name!r} is not a model under models")
    for name, spec in datasets.items():
        if KINDS[spec["kind"]].user_path and not spec.get("path"):
            raise ConfigMistake(f"datasets.{name}.path", "the folder of your own ImageNet validation set "
                                "(licence-bound: it is checked, never downloaded)")


_TEXTSPAN_LABEL = "the label of a textspan algorithm under explain.algorithms"


def _heads_expected(key: str, expected: str) -> ConfigMistake:
    return _expected(f"heads.{key}", expected)


def _check_kinds(datasets: dict, names: list, key: str, protocol: str, joiner: str) -> None:
    """Every name of ``heads.<key>`` is a data set of a kind ``protocol`` reads."""
    kinds = kinds_serving(protocol)
    for name in names:
        if name not in datasets or datasets[name]["kind"] not in kinds:
            raise _heads_expected(key, f"data sets of kind {joiner.join(kinds)}, got {name!r}")


def check_heads(config: dict) -> None:
    """The `heads:` section (nothing to check without one)."""
    heads, datasets = config.get("heads"), config["datasets"]
    if not heads:
        return
    for name in heads["models"]:
        if name not in config["models"]:
            raise _heads_expected("models", f"models defined under models, got {name!r}")
    for name, pool in heads["text_pools"].items():
        if ("source" in pool) == ("generate" in pool):
            raise _heads_expected(f"text_pools.{name}", "exactly one of source (download) or generate")
        if "source" in pool and (pool["source"] not in SOURCES or SOURCES[pool["source"]].kind != "text"):
            names = sorted(s.name for s in SOURCES.values() if s.kind == "text")
            raise _heads_expected(f"text_pools.{name}.source", f"a text source ({', '.join(names)})")
    explain = heads["explain"]
    _check_kinds(datasets, explain["datasets"], "explain.datasets", "heads-explain", ", ")
    for label, spec in explain["algorithms"].items():
        if spec["pool"] not in heads["text_pools"]:
            raise _heads_expected(f"explain.algorithms.{label}.pool", "a pool under heads.text_pools")
    _check_kinds(datasets, (heads.get("segmentation") or {"datasets": []})["datasets"], "segmentation.datasets",
                 "imagenet-seg", " or ")
    waterbirds = heads.get("waterbirds")
    if waterbirds:
        _check_kinds(datasets, waterbirds["datasets"], "waterbirds.datasets", "waterbirds", " or ")
        if waterbirds["select_on"] not in explain["datasets"]:
            raise _heads_expected("waterbirds.select_on", "one of heads.explain.datasets")
        if explain["algorithms"].get(waterbirds["select_with"], {}).get("algorithm") != "textspan":
            raise _heads_expected("waterbirds.select_with", _TEXTSPAN_LABEL)
    neighbours = heads.get("neighbours")
    if neighbours:
        for name in neighbours["datasets"]:
            if name not in explain["datasets"]:
                raise _heads_expected("neighbours.datasets", f"explained data sets, got {name!r}")
        if explain["algorithms"].get(plan.neighbours_algorithm(config), {}).get("algorithm") != "textspan":
            raise _heads_expected("neighbours.algorithm", _TEXTSPAN_LABEL)
    for name, spec in datasets.items():
        for key in KINDS[spec["kind"]].required_numbers:
            if key not in spec:
                raise _expected(f"datasets.{name}.{key}", f"a number for a {spec['kind']} data set")


def check_faithfulness(config: dict) -> None:
    """faithfulness.models are grounding models (their maps are perturbed)."""
    for name in plan.section(config, "faithfulness").get("models", []):
        if name not in config["grounding"]["models"]:
            raise ConfigMistake("faithfulness.models", f"{name!r} is not one of grounding.models "
                                "(the curves perturb the pairs whose grounding maps were made)")


def check_similarity(config: dict) -> None:
    """similarity names models, a grounding method and, for a shapes study, a single-object data set."""
    similarity, datasets = plan.section(config, "similarity"), config["datasets"]
    for name in similarity.get("models", []):
        if name not in config["models"]:
            raise ConfigMistake("similarity.models", f"{name!r} is not a model under models")
    if similarity.get("models") and similarity.get("method", "rollout-last-grad") not in method_specs(config):
        raise ConfigMistake("similarity.method", f"{similarity.get('method')!r} is not a label under grounding.methods")
    kinds = kinds_serving("similarity-shapes")
    for study, spec in (similarity.get("studies") or {}).items():
        if spec["kind"] == "shapes" and datasets.get(spec.get("dataset"), {}).get("kind") not in kinds:
            raise ConfigMistake(f"similarity.studies.{study}.dataset",
                                f"a data set of kind {' or '.join(kinds)} (single-object images)")


def check_workflow(config: dict) -> None:
    """Every cross-reference, in the order the workflow has always checked them (the first mistake raises)."""
    check_references(config, "config")
    check_report(config)
    check_segmentation_and_zeroshot(config)
    check_heads(config)
    check_faithfulness(config)
    check_similarity(config)
