"""Load and validate the workflow configuration against the schema shipped in the package
(src/clipxai/schemas/config.schema.yaml, read through importlib.resources: an installed, non-editable clipxai
validates a config from any folder).

Used by rules/common.smk before anything runs (the schema step through ``snakemake.utils.validate``, its error
turned into one line by :func:`schema_error`; then clipxai.workflow.checks.check_workflow, which starts with
:func:`check_references`), and by commands that read the config (:func:`load`). A typo or a wrong type ends with
one line naming the key: ``config.yaml: datasets.shapes.n_train: expected integer, got '10k'``.

Imports only jsonschema and yaml (Snakemake's own dependencies): the Snakefile parses in a plain Snakemake
environment, without torch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from clipxai.data.kinds import kinds_serving
from clipxai.errors import InputError
from clipxai.method_table import METHOD_MAPS_TEXT, METHOD_PARAMETERS  # noqa: F401  (METHOD_MAPS_TEXT re-exported)

# The schema is package data; rules/common.smk hands the same file to snakemake.utils.validate by its path in the
# workflow's source tree (src/clipxai/schemas/config.schema.yaml).
SCHEMA = resources.files("clipxai").joinpath("schemas", "config.schema.yaml")


def load_schema(path: str | Path | None = None) -> dict:
    """The config schema: the packaged one, or the file at ``path``."""
    text = SCHEMA.read_text(encoding="utf-8") if path is None else Path(path).read_text(encoding="utf-8")
    return yaml.safe_load(text)


# Names that become wildcards and folder names (results/<dataset>/<model>/...): the schema's propertyNames.
NAME_PATTERN = "^[A-Za-z0-9_-]+$"

# Parameters whose value is one of a few words, whatever the method.
PARAMETER_CHOICES: dict[str, tuple[str, ...]] = {"polarity": ("positive", "negative"), "mode": ("faithful", "corrected")}
# heads.segmentation.methods may also name the TextSpan decomposition map (no parameters).
DECOMPOSITION = "decomposition"


def _is_name_error(error: jsonschema.ValidationError) -> bool:
    return "propertyNames" in error.schema_path


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if _is_name_error(error):
        return ".".join(parts + [str(error.instance)])
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return ".".join(parts + extra[:1]) or "(top level)"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return ".".join(parts + [missing])
    return ".".join(parts) or "(top level)"


def _expected(error: jsonschema.ValidationError) -> str:
    v, s = error.validator, error.validator_value
    if _is_name_error(error):
        return "a name of letters, digits, '_' and '-' only (it becomes part of file paths)"
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
        raise schema_error(error, source)
    check_references(config, source)
    return config


def schema_error(error: jsonschema.ValidationError, source: str = "config") -> InputError:
    """The one-line InputError for a schema violation (``snakemake.utils.validate`` raises it as the context of
    its WorkflowError)."""
    return InputError(source, _key_path(error), _expected(error))


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _type_matches(value, default) -> bool:
    """Whether a YAML value has the type of a method parameter's default (bool is not an int here)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def check_methods(methods: dict, section: str, source: str, extra: tuple[str, ...] = ()) -> None:
    """Every ``label -> {method?, params...}`` of ``section`` names a known method with known parameters of the
    right type (``extra``: parameterless names the section also accepts)."""
    known = sorted(METHOD_PARAMETERS) + list(extra)
    for label, params in methods.items():
        params = dict(params or {})
        name = params.pop("method", label)
        where = f"{section}.{label}" + (".method" if name != label else "")
        if name in extra:
            defaults = {}
        elif name in METHOD_PARAMETERS:
            defaults = METHOD_PARAMETERS[name]
        else:
            raise InputError(source, where, f"a method name ({', '.join(known)}), got {name!r}"
                             + ("" if name != label else "; or a `method:` key naming one"))
        for key, value in params.items():
            if key not in defaults:
                allowed = ", ".join(sorted(defaults)) or "none"
                raise InputError(source, f"{section}.{label}.{key}",
                                 f"a parameter of method {name} (known: {allowed})")
            if defaults[key] is not None and not _type_matches(value, defaults[key]):
                raise InputError(source, f"{section}.{label}.{key}",
                                 f"{_TYPE_WORDS[type(defaults[key])]}, got {value!r}")
            if key in PARAMETER_CHOICES and value not in PARAMETER_CHOICES[key]:
                raise InputError(source, f"{section}.{label}.{key}",
                                 f"one of {', '.join(PARAMETER_CHOICES[key])}, got {value!r}")


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
            trainable = kinds_serving("toy-training")  # the shapes world in COCO/PNG format
            if train_on not in config["datasets"] or config["datasets"][train_on]["kind"] not in trainable:
                raise InputError(source, f"models.{name}.train_on", "the name of a shapes data set")
        elif "name" not in model:
            raise InputError(source, f"models.{name}.name", "an open_clip model name for kind open_clip")
    check_methods(config["grounding"]["methods"], "grounding.methods", source)
    heads_methods = ((config.get("heads") or {}).get("segmentation") or {}).get("methods")
    if heads_methods:
        check_methods(heads_methods, "heads.segmentation.methods", source, extra=(DECOMPOSITION,))


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
