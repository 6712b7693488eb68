"""Load any CLIP the same way: an open_clip name + pretrained tag, an open_clip model-config JSON, a local folder
(``open_clip_config.json`` + weights, the format the toy trainer writes), optionally with a local checkpoint.

Every caller gets a :class:`LoadedModel`: the model in eval mode plus what explaining it needs (its own eval
transform, tokenizer, input size, patch grid), so no method hard-codes ViT-B/32's 224 px and 7x7 grid.
:func:`load_model` picks the loader from :data:`LOADERS` (CLIPpy's, else open_clip's); this module also checks
model configs and checkpoints before anything is built. Nothing is registered with open_clip on import.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import pickle
import re
import types
import typing
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import open_clip
import torch

from clipxai.errors import InputError
from clipxai.models import clippy
from clipxai.models.loaded import LoadedModel, add_open_clip_config, grid_of, image_size_of
from clipxai.models.weights import check_stamp_files, is_weights_stamp, read_weights_stamp

log = logging.getLogger(__name__)

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def _register_config_json(path: Path) -> str:
    """Register a model-config JSON with open_clip and return the name to create it by."""
    cfg = read_model_config(path)
    return add_open_clip_config(f"clipxai-{path.stem}", cfg)


def _tag_preprocess(name: str, pretrained: str | None) -> dict | None:
    """The preprocessing open_clip applies for a pretrained tag (mean/std/interpolation/resize), so weights loaded
    from the file a stamp records are fed exactly as open_clip would feed the tag."""
    if not pretrained:
        return None
    cfg = open_clip.pretrained.get_pretrained_cfg(name, pretrained) or {}
    keys = ("mean", "std", "interpolation", "resize_mode")
    return {k: cfg[k] for k in keys if k in cfg} or None


# ---------------------------------------------------------------------------------------------- model configs
# open_clip builds a model from a config dict by passing its keys on as keyword arguments (CLIP(**cfg),
# CLIPVisionCfg(**cfg["vision_cfg"]), ...): a misspelled key or a string where a number belongs would end in a
# TypeError deep inside it. The config is checked against those signatures first, so the error names the key.


def _top_level_keys() -> set[str]:
    from open_clip.coca_model import CoCa
    from open_clip.model import CLIP, CustomTextCLIP

    keys = {"custom_text"}  # read by open_clip's factory to pick the model class
    for cls in (CLIP, CustomTextCLIP, CoCa):
        keys |= set(inspect.signature(cls.__init__).parameters) - {"self", "cast_dtype"}
    return keys


def _tower_classes() -> dict[str, type]:
    from open_clip.coca_model import MultimodalCfg
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    return {"vision_cfg": CLIPVisionCfg, "text_cfg": CLIPTextCfg, "multimodal_cfg": MultimodalCfg}


def _type_name(hint: Any) -> str:
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(p) for p in params if p is not type(None)) + (
            " or null" if type(None) in params else "")
    if origin in (tuple, list):
        return f"a list of {_type_name(params[0])}" if params else "a list"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string", dict: "an object"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint (int is not bool, a number may be an int, a tuple is a list)."""
    if hint is Any:
        return True
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, p) for p in params)
    if hint is type(None):
        return value is None
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and params and params[-1] is not Ellipsis:
            return len(value) == len(params) and all(_matches(v, p) for v, p in zip(value, params))
        return all(_matches(v, params[0]) for v in value) if params else True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint in (str, dict):
        return isinstance(value, hint)
    return True  # a type JSON cannot express (a dataclass, a dtype): left to open_clip


def check_fields(values: Any, cls: type, source: str | Path, where: str) -> None:
    """``values`` is a JSON object whose keys are fields of dataclass ``cls`` with values of the fields' types."""
    if not isinstance(values, dict):
        raise InputError(source, where, f"a JSON object of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    names = sorted(f.name for f in dataclasses.fields(cls))
    for key, value in values.items():
        field = f"{where}.{key}" if where else key
        if key not in names:
            raise InputError(source, field, f"a known key of {where or cls.__name__} (one of {', '.join(names)})")
        if value is None:  # open_clip's own configs write null for "not applicable to this tower"
            continue
        if not _matches(value, hints[key]):
            raise InputError(source, field, f"{_type_name(hints[key])}, got {json.dumps(value)}")


def validate_model_config(cfg: Any, source: str | Path) -> None:
    """Raise an InputError naming the first key of an open_clip model config that open_clip would reject."""
    if not isinstance(cfg, dict):
        raise InputError(source, "(file)", "a JSON object (an open_clip model config)")
    for key in ("embed_dim", "vision_cfg", "text_cfg"):
        if key not in cfg:
            raise InputError(source, key, "an open_clip model config with embed_dim, vision_cfg and text_cfg")
    allowed = _top_level_keys()
    for key in cfg:
        if key not in allowed:
            raise InputError(source, key, f"a known top-level key (one of {', '.join(sorted(allowed))})")
    if not _matches(cfg["embed_dim"], int) or cfg["embed_dim"] < 1:
        raise InputError(source, "embed_dim", f"a positive integer, got {json.dumps(cfg['embed_dim'])}")
    for key, cls in _tower_classes().items():
        if key in cfg:
            check_fields(cfg[key], cls, source, key)


def read_model_config(path: str | Path) -> dict:
    """The model config of an open_clip model-config JSON (or a folder's ``open_clip_config.json``), validated."""
    path = Path(path)
    try:
        cfg = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(path, "(file)", f"a readable JSON model config ({err})") from None
    if isinstance(cfg, dict) and "model_cfg" in cfg:  # the open_clip_config.json wrapper (hub / local-dir format)
        cfg = cfg["model_cfg"]
    validate_model_config(cfg, path)
    return cfg


# ---------------------------------------------------------------------------------------------- checkpoints


def check_checkpoint(path: str | Path, field: str = "--checkpoint") -> None:
    """Open a local state dict the safe way before any model is built: a .safetensors header must parse, a torch
    file must unpickle with ``weights_only`` (tensors and plain containers; any other object is refused, never
    constructed). Zip-format torch files are memory-mapped, so this reads little of a large checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, field, "an existing state-dict file")
    if path.suffix == ".json":  # a fetch-weights stamp (what the workflow's jobs pass): check what it records
        check_stamp_files(path, field)
        return
    if path.suffix not in _CHECKPOINT_SUFFIXES:
        raise InputError(path, field, f"a state dict ending in one of {', '.join(_CHECKPOINT_SUFFIXES)}")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                fh.keys()
        except Exception as err:  # safetensors raises its own SafetensorError (and OSError): garbage either way
            raise InputError(path, field, f"a valid .safetensors file ({_first_line(err)})") from None
        return
    try:
        with warnings.catch_warnings():  # torch warns about a pickle protocol it then refuses anyway: one line
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:  # torch's weights-only unpickler refused something: nothing ran
        reason = _first_line(err, "WeightsUnpickler error: Unsupported global") or _first_line(err, "Unsupported")
        named = re.search(r"GLOBAL (\S+)", reason)
        why = f"it asks to construct {named.group(1)}" if named else f"weights-only loading refused it ({reason})"
        raise InputError(path, field, f"a state dict of tensors only: {why}; refused, nothing in it was "
                         "executed") from None
    except Exception as err:  # a truncated file, not a torch file at all
        raise InputError(path, field, f"a torch state dict ({type(err).__name__}: {_first_line(err)})") from None
    if not isinstance(state, dict):
        raise InputError(path, field, f"a state dict (a mapping of names to tensors), got {type(state).__name__}")


def _first_line(err: BaseException, starting: str = "") -> str:
    """A short reason from a library's multi-line message: its first line, or the one starting with ``starting``
    ("" if none does)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if starting:
        return next((line for line in lines if line.startswith(starting)), "")[:200]
    return (lines[0] if lines else "")[:200]


def check_model_source(model: str, field: str = "--model") -> None:
    """Validate what ``--model`` names, if it is a local file or folder, before anything is built."""
    source = Path(model[len("local-dir:"):] if model.startswith("local-dir:") else model)
    if source.is_dir():
        config = source / "open_clip_config.json"
        if not config.is_file():
            raise InputError(config, field, "an open_clip model folder's config")
        read_model_config(config)
        for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            if (source / name).is_file():
                check_checkpoint(source / name, field)
    elif source.suffix == ".json" and source.is_file():
        read_model_config(source)


# ---------------------------------------------------------------------------------------------------- loaders


def load_open_clip(model: str, pretrained: str | None = None, checkpoint: str | None = None,
                   device: str | torch.device = "cpu", weights_stamp: str | Path | None = None) -> LoadedModel:
    """Create a CLIP by open_clip name, config JSON or local folder, and load weights.

    ``pretrained`` is an open_clip tag (downloaded into open_clip's cache). ``checkpoint`` is a local state dict
    (.pt/.safetensors), loaded with ``weights_only=True``, or the stamp ``clipxai fetch-weights`` wrote (a .json):
    then exactly the file it records is loaded, checked against its size and sha256, with the preprocessing of the
    tag it was fetched for (what the workflow's jobs do). Neither given: random initialisation (tests, benchmarks).
    ``weights_stamp`` beside ``pretrained`` (no ``checkpoint``): the tag's bytes as that stamp recorded them.
    """
    if weights_stamp is not None and pretrained and checkpoint is None:
        # the tag's bytes as fetched (the stamp), not whatever the hub cache holds for the tag now
        pretrained, checkpoint = None, str(weights_stamp)
    if pretrained and checkpoint:
        raise InputError(checkpoint, "--checkpoint", "either --pretrained or --checkpoint, not both")
    preprocess_cfg = _tag_preprocess(model, pretrained) if pretrained and not Path(model).exists() else None
    if is_weights_stamp(checkpoint):
        stamp = read_weights_stamp(checkpoint)
        if stamp.model_dir is not None:
            model = str(stamp.model_dir)
        elif stamp.pretrained:
            preprocess_cfg = _tag_preprocess(model, stamp.pretrained)
        checkpoint = str(stamp.path)
    if checkpoint is not None:
        ckpt = Path(checkpoint)
        if not ckpt.is_file():
            raise InputError(ckpt, "--checkpoint", "an existing state-dict file")
        if ckpt.suffix not in _CHECKPOINT_SUFFIXES:
            raise InputError(ckpt, "--checkpoint", f"a state dict ending in one of {', '.join(_CHECKPOINT_SUFFIXES)}")
    device = torch.device(device)
    source = Path(model)
    local_dir = None
    if model.startswith("local-dir:"):
        local_dir = Path(model[len("local-dir:"):])
    elif source.is_dir():
        local_dir = source
    if local_dir is not None:
        if not (local_dir / "open_clip_config.json").is_file():
            raise InputError(local_dir / "open_clip_config.json", "(file)", "an open_clip model folder's config")
        name = _register_config_json(local_dir / "open_clip_config.json")
        weights = checkpoint or open_clip.factory._find_checkpoint_in_dir(local_dir)
        display = str(local_dir)
    elif source.suffix == ".json":
        if not source.is_file():
            raise InputError(source, "--model", "an existing open_clip model-config JSON")
        name, weights, display = _register_config_json(source), checkpoint, str(source)
    else:
        if open_clip.get_model_config(model) is None:
            raise InputError(model, "--model", "an open_clip model name (e.g. ViT-B-32-quickgelu; see "
                             "open_clip.list_models()), a model-config JSON or a model folder")
        name, weights, display = model, checkpoint or pretrained, model
    extra = {}
    if checkpoint and preprocess_cfg:  # create_model_and_transforms takes the tag's preprocessing as image_* args
        extra = {f"image_{k}": v for k, v in preprocess_cfg.items()}
    try:
        clip, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=weights, device=device,
                                                                    **extra)
    except RuntimeError as err:
        raise InputError(weights or model, "weights", f"loadable weights for {display} ({err})") from None
    clip.eval()
    tokenizer = open_clip.get_tokenizer(name)
    image_size = image_size_of(clip.visual)
    cfg = getattr(clip.visual, "preprocess_cfg", {}) or {}
    mean = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))
    context_length = int(getattr(clip, "context_length", getattr(tokenizer, "context_length", 77)))
    log.info("loaded %s (weights: %s) on %s: %d px, grid %s", display, weights or "random init", device,
             image_size, grid_of(clip.visual, image_size))
    return LoadedModel(model=clip, preprocess=preprocess, tokenizer=tokenizer, name=display, image_size=image_size,
                       grid=grid_of(clip.visual, image_size), context_length=context_length, mean=mean, std=std,
                       device=device)


@dataclass(frozen=True)
class Loader:
    """One way of building models: ``matches(model)`` says whether it builds ``model``, ``load(model, pretrained,
    checkpoint, device, weights_stamp=...)`` builds it (a :class:`LoadedModel`)."""

    name: str
    matches: Callable[[str], bool]
    load: Callable[..., LoadedModel]


def _any_model(model: str) -> bool:
    return True  # open_clip's loader takes every name, config JSON and folder no other loader claims


# First match wins. CLIPpy-style configs (timm image tower + Hugging Face text tower) have their own loader: random
# init must not fetch T5 weights, and the released checkpoint needs its keys converted.
LOADERS = (Loader("clippy", clippy.matches, clippy.load), Loader("open_clip", _any_model, load_open_clip))


def load_model(model: str, pretrained: str | None = None, checkpoint: str | None = None,
               device: str | torch.device = "cpu", weights_stamp: str | Path | None = None) -> LoadedModel:
    """Build ``model`` with the first of :data:`LOADERS` that matches it (see :func:`load_open_clip` and
    :func:`clipxai.models.clippy.load` for what ``pretrained``, ``checkpoint`` and ``weights_stamp`` may be)."""
    loader = next(loader for loader in LOADERS if loader.matches(model))
    return loader.load(model, pretrained, checkpoint, device, weights_stamp=weights_stamp)
