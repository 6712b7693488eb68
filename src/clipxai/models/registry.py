"""Load any CLIP the same way: an open_clip name + pretrained tag, an open_clip model-config JSON, a local folder
(``open_clip_config.json`` + weights, the format the toy trainer writes), optionally with a local checkpoint.

Every caller gets a :class:`LoadedModel`: the model in eval mode plus what explaining it needs (its own eval
transform, tokenizer, input size, patch grid), so no method hard-codes ViT-B/32's 224 px and 7x7 grid.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import open_clip
import torch

from clipxai.errors import InputError

log = logging.getLogger(__name__)

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


@dataclass
class LoadedModel:
    """A CLIP model and everything needed to feed and explain it."""

    model: torch.nn.Module
    preprocess: Callable  # PIL image -> float tensor [3, H, W] (the model's own open_clip eval transform)
    tokenizer: Callable  # list[str] -> LongTensor [B, context_length]
    name: str
    image_size: int
    grid: tuple[int, int]
    context_length: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device

    @property
    def is_vit(self) -> bool:
        return isinstance(self.model.visual, open_clip.transformer.VisionTransformer)


def _grid_of(visual: torch.nn.Module, image_size: int) -> tuple[int, int]:
    if hasattr(visual, "grid_size"):  # open_clip VisionTransformer
        return tuple(int(g) for g in visual.grid_size)
    return (image_size // 32, image_size // 32)  # ModifiedResNet: stride 32 before attention pooling


def _image_size_of(visual: torch.nn.Module) -> int:
    size = visual.image_size
    if isinstance(size, (tuple, list)):
        if size[0] != size[1]:
            raise InputError("model", "vision_cfg.image_size", f"a square input, got {tuple(size)}")
        size = size[0]
    return int(size)


def _register_config_json(path: Path) -> str:
    """Register a model-config JSON with open_clip and return the name to create it by."""
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(path, "(file)", f"a readable JSON model config ({err})") from None
    if "model_cfg" in cfg:  # the open_clip_config.json wrapper (hub / local-dir format)
        cfg = cfg["model_cfg"]
    for key in ("embed_dim", "vision_cfg", "text_cfg"):
        if key not in cfg:
            raise InputError(path, key, "an open_clip model config with embed_dim, vision_cfg and text_cfg")
    name = f"clipxai-{path.stem}"
    open_clip.factory._MODEL_CONFIGS[name] = cfg  # open_clip's own registry; add_model_config keys by file stem only
    return name


@dataclass(frozen=True)
class WeightsStamp:
    """What ``clipxai fetch-weights`` recorded: the weights file (verified again on load), the tag it stands for
    (its preprocessing applies), and CLIPpy's text-tower folder (tokenizer + config) when fetched."""

    path: Path
    pretrained: str | None
    tokenizer: Path | None
    model_dir: Path | None


def _file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def is_weights_stamp(path: str | Path | None) -> bool:
    return path is not None and str(path).endswith(".json") and Path(path).is_file()


def read_weights_stamp(stamp: str | Path) -> WeightsStamp:
    """Read a fetch-weights stamp and check that its files are still the bytes it recorded (size and sha256):
    every job loads exactly what was fetched, whatever the caches or the hub hold now."""
    stamp = Path(stamp)
    try:
        record = json.loads(stamp.read_text())
        files = record["files"]
        weights = files[0]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise InputError(stamp, "files", "a clipxai fetch-weights stamp (files: [{path, size, sha256}])") from None
    for entry in files + list((record.get("tokenizer") or {}).get("files", [])):
        path = Path(entry["path"])
        if not path.is_file():
            raise InputError(stamp, "files.path", f"the fetched file {path} (fetch the weights again)")
        if path.stat().st_size != entry["size"] or _file_sha256(path) != entry["sha256"]:
            raise InputError(stamp, "files.sha256", f"{path} with sha256 {entry['sha256']} as fetched; it changed "
                             "since (fetch the weights again)")
    tokenizer = record.get("tokenizer")
    return WeightsStamp(path=Path(weights["path"]), pretrained=record.get("pretrained") or None,
                        tokenizer=Path(tokenizer["dir"]) if tokenizer else None,
                        model_dir=Path(record["model_dir"]) if record.get("model_dir") else None)


def _tag_preprocess(name: str, pretrained: str | None) -> dict | None:
    """The preprocessing open_clip applies for a pretrained tag (mean/std/interpolation/resize), so weights loaded
    from the file a stamp records are fed exactly as open_clip would feed the tag."""
    if not pretrained:
        return None
    cfg = open_clip.pretrained.get_pretrained_cfg(name, pretrained) or {}
    keys = ("mean", "std", "interpolation", "resize_mode")
    return {k: cfg[k] for k in keys if k in cfg} or None


def load_model(model: str, pretrained: str | None = None, checkpoint: str | None = None,
               device: str | torch.device = "cpu") -> LoadedModel:
    """Create a CLIP by open_clip name, config JSON or local folder, and load weights.

    ``pretrained`` is an open_clip tag (downloaded into open_clip's cache). ``checkpoint`` is a local state dict
    (.pt/.safetensors), loaded with ``weights_only=True``, or the stamp ``clipxai fetch-weights`` wrote (a .json):
    then exactly the file it records is loaded, checked against its size and sha256, with the preprocessing of the
    tag it was fetched for (what the workflow's jobs do). Neither given: random initialisation (tests, benchmarks).
    """
    from clipxai.models import clippy  # registers clippy-B-16 with open_clip (import here: clippy imports us)

    if model == clippy.MODEL_NAME or (not Path(model).exists() and clippy.is_clippy(model)):
        # timm image tower + Hugging Face text tower: random init must not fetch T5 weights, and the released
        # checkpoint needs its keys converted
        return clippy.load(model, pretrained, checkpoint, device)
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
    image_size = _image_size_of(clip.visual)
    cfg = getattr(clip.visual, "preprocess_cfg", {}) or {}
    mean = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))
    context_length = int(getattr(clip, "context_length", getattr(tokenizer, "context_length", 77)))
    log.info("loaded %s (weights: %s) on %s: %d px, grid %s", display, weights or "random init", device,
             image_size, _grid_of(clip.visual, image_size))
    return LoadedModel(model=clip, preprocess=preprocess, tokenizer=tokenizer, name=display, image_size=image_size,
                       grid=_grid_of(clip.visual, image_size), context_length=context_length, mean=mean, std=std,
                       device=device)
