"""Load and validate the workflow configuration against schemas/config.schema.yaml.

Used by rules/common.smk before anything runs, and by commands that read the config. A typo or a wrong type
ends with one line naming the key: ``config.yaml: datasets.shapes.n_train: expected integer, got '10k'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from clipxai.errors import InputError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return ".".join(parts + extra[:1]) or "(top level)"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return ".".join(parts + [missing])
    return ".".join(parts) or "(top level)"


def _expected(error: jsonschema.ValidationError) -> str:
    v, s = error.validator, error.validator_value
    if v == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"a known key ({', '.join(allowed)})" if allowed else "no unknown key"
    if v == "required":
        return "this key to be present"
    if v == "type":
        return f"{s}, got {error.instance!r}"
    if v == "enum":
        return f"one of {', '.join(map(str, s))}, got {error.instance!r}"
    return f"{v} {s!r}, got {error.instance!r}"


def validate(config: dict, schema: dict | None = None, source: str = "config") -> dict:
    """Validate ``config`` (in place, filling schema defaults) and return it; raise InputError on the first problem."""
    schema = schema or load_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    # fill defaults while validating, so rules read one complete config
    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = sub["default"]
        yield from validator_cls.VALIDATORS["properties"](validator, properties, instance, schema_)

    filling = jsonschema.validators.extend(validator_cls, {"properties": set_defaults})
    error = jsonschema.exceptions.best_match(filling(schema).iter_errors(config))
    if error is not None:
        raise InputError(source, _key_path(error), _expected(error))
    check_references(config, source)
    return config


def check_references(config: dict, source: str) -> None:
    """Cross-references the schema cannot express: names used in one section must be defined in another."""
    for i, name in enumerate(config["grounding"]["datasets"]):
        if name not in config["datasets"]:
            raise InputError(source, f"grounding.datasets[{i}]", f"a data set defined under datasets, got {name!r}")
    for i, name in enumerate(config["grounding"]["models"]):
        if name not in config["models"]:
            raise InputError(source, f"grounding.models[{i}]", f"a model defined under models, got {name!r}")
    for name, model in config["models"].items():
        if model["kind"] == "toy":
            train_on = model.get("train_on")
            if train_on not in config["datasets"] or config["datasets"][train_on]["kind"] != "shapes":
                raise InputError(source, f"models.{name}.train_on", "the name of a shapes data set")
        elif "name" not in model:
            raise InputError(source, f"models.{name}.name", "an open_clip model name for kind open_clip")


def load(path: str | Path) -> dict:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, "(file)", f"a readable YAML file ({err})") from None
    return validate(config, source=str(path))


def method_specs(config: dict) -> dict[str, tuple[str, dict[str, Any]]]:
    """label -> (registry name, parameters) for every grounding method in config."""
    specs = {}
    for label, params in config["grounding"]["methods"].items():
        params = dict(params or {})
        specs[label] = (params.pop("method", label), params)
    return specs
