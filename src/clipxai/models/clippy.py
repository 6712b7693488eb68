"""CLIPpy (Ranasinghe et al., "Perceptual Grouping in Contrastive Vision-Language Models"; the kahnchana/clippy
replication) as an open_clip model named ``clippy-B-16``.

Architecture (facts from the replication's model config and towers):

* image tower: a timm ViT-B/16 initialised from DINO (``vit_base_patch16_224.dino``); the final LayerNorm is applied
  to every token, then the image embedding is the **max over all tokens, class token included**, with no projection
  (768-d). open_clip 3's ``TimmModel`` cannot express that head (timm's ``global_pool="max"`` drops the class token
  and moves the norm after the pooling), so a timm entry point ``clippy_vit_base_patch16_224`` with exactly that head
  is registered here, and the config names it;
* text tower: the Sentence-T5 encoder (``sentence-transformers/sentence-t5-base``): T5-base encoder, attention-masked
  mean over tokens, then Sentence-T5's bias-free 768x768 dense layer (open_clip's ``hf_proj_type: linear``).

The config lives in ``configs/clippy-B-16.json``. The Hugging Face text tower needs its T5 *config* at build time: it
is read from the Hugging Face cache when present there, otherwise from the copy shipped in
``configs/sentence-t5-base/config.json``, so the model builds with no network access. The T5 *tokenizer* (a
SentencePiece vocabulary, not shipped) must come from the hub cache; :func:`prefetch_text_tower` fills it on a
machine with internet.

The released checkpoint (``clippy_5k.pt``) was saved by the replication's own open_clip fork, whose text tower was a
whole ``SentenceTransformer``: :func:`convert_state_dict` renames its keys to this config's (and refuses anything
it does not recognise), so the checkpoint loads strictly.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Mapping

import open_clip
import torch

from clipxai.errors import InputError
from clipxai.models.loaded import LoadedModel, add_open_clip_config
from clipxai.models.weights import file_record, is_weights_stamp, read_weights_stamp

log = logging.getLogger(__name__)

MODEL_NAME = "clippy-B-16"
CONFIG_DIR = Path(__file__).with_name("configs")
CONFIG_PATH = CONFIG_DIR / f"{MODEL_NAME}.json"
TEXT_REPO = "sentence-transformers/sentence-t5-base"
SHIPPED_TEXT_CONFIG_DIR = CONFIG_DIR / "sentence-t5-base"
TIMM_ARCH = "clippy_vit_base_patch16_224"
DINO_INIT = "vit_base_patch16_224.dino"
# Where `clipxai fetch-weights` puts URL-addressed checkpoints by default (open_clip's own URL cache).
DEFAULT_WEIGHTS_CACHE = "~/.cache/clip"
# Files of the text tower a compute node needs in the Hugging Face cache (no weights: the checkpoint has them).
TEXT_TOWER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "spiece.model")
# The catalogue entry of CLIPpy's Sentence-T5 tokenizer (its text tower's vocabulary; the weights come with CLIPpy's).
TOKENIZER_SOURCE = "sentence_t5_base_tokenizer"

__all__ = ["MODEL_NAME", "TIMM_ARCH", "clippy_vit", "clippy_vit_base_patch16_224", "convert_state_dict",
           "fetch_text_tower", "is_clippy", "load", "load_checkpoint_state", "matches", "model_config",
           "prefetch_text_tower", "register", "resolve_weights", "save_converted", "text_sources",
           "tokenizer_available"]


# ------------------------------------------------------------------------------------------------ image tower


def clippy_vit(variant: str = DINO_INIT, pretrained: bool = False, **kwargs) -> torch.nn.Module:
    """A timm ViT with CLIPpy's head: final norm on every token, max over all tokens (class token included), no
    classifier, no norm after pooling. ``kwargs`` override the architecture (tests build tiny ones)."""
    import timm

    for key in ("pretrained_cfg", "pretrained_cfg_overlay"):  # timm's factory hands these to every entry point
        kwargs.pop(key, None)
    kwargs.update(num_classes=0, global_pool="max", pool_include_prefix=True, fc_norm=False)
    return timm.create_model(variant, pretrained=pretrained, **kwargs)


def clippy_vit_base_patch16_224(pretrained: bool = False, **kwargs) -> torch.nn.Module:
    """timm entry point of CLIPpy's image tower (ViT-B/16; ``pretrained`` = the DINO initialisation)."""
    return clippy_vit(DINO_INIT, pretrained=pretrained, **kwargs)


def _register_timm_entry_point() -> None:
    import timm.models

    if not timm.models.is_model(TIMM_ARCH):
        timm.models.register_model(clippy_vit_base_patch16_224)


# ------------------------------------------------------------------------------------------------- text tower


def _register_t5_architecture() -> None:
    """open_clip's HF adapter looks a text model's widths up by ``model_type``; it knows ``mt5`` but not ``t5``,
    whose config uses the same attribute names."""
    from open_clip.hf_configs import arch_dict

    arch_dict.setdefault("t5", copy.deepcopy(arch_dict["mt5"]))


def _hub_cached(repo: str, filename: str) -> bool:
    """Is ``filename`` of hub repo ``repo`` in the local Hugging Face cache? (filesystem only, no network)"""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo, filename), str)


def text_sources(tokenizer: str | os.PathLike | None = None) -> dict[str, str]:
    """Where the text tower's config and tokenizer come from: ``{"model", "tokenizer", "config_origin"}``.

    The T5 config: the hub repo when its ``config.json`` is in the Hugging Face cache, else the shipped copy (the
    same architecture; the weights come from the CLIPpy checkpoint either way), so building never needs the network.
    The tokenizer: ``tokenizer`` if given (a local folder), else the hub repo (read from the cache when offline).
    """
    if _hub_cached(TEXT_REPO, "config.json"):
        model_source, origin = TEXT_REPO, "hub cache"
    else:
        model_source, origin = str(SHIPPED_TEXT_CONFIG_DIR), "shipped copy"
    return {"model": model_source, "tokenizer": str(tokenizer) if tokenizer is not None else TEXT_REPO,
            "config_origin": origin}


def tokenizer_available(source: str) -> bool:
    """Can the tokenizer at ``source`` (a folder or a hub repo) be built without the network?"""
    if Path(source).is_dir():
        return (Path(source) / "tokenizer_config.json").is_file() or (Path(source) / "tokenizer.json").is_file()
    return _hub_cached(source, "tokenizer_config.json")


def prefetch_text_tower(cache_dir: str | None = None) -> str:
    """Download the Sentence-T5 config and tokenizer files (not its weights) into the Hugging Face cache, so that a
    node without internet can build CLIPpy; returns the snapshot folder. Needs the network."""
    from huggingface_hub import snapshot_download

    return snapshot_download(TEXT_REPO, allow_patterns=list(TEXT_TOWER_FILES), cache_dir=cache_dir)


def fetch_text_tower(directory: str | Path, mirror: dict | None = None, *, lock: str | Path | None = None,
                     retries: int = 4, timeout: float = 60.0, progress: bool = True) -> dict:
    """CLIPpy's text tower without its weights (the checkpoint has them): the Sentence-T5 tokenizer downloaded
    (verified; pinned in the lock at first download) beside the shipped T5 config, in one folder a compute node
    builds the tokenizer from offline. Returns the fetch-weights stamp's ``tokenizer`` record."""
    import shutil

    from clipxai.data import sources
    from clipxai.data.download import download
    from clipxai.io import atomic_path

    source = sources.resolve(TOKENIZER_SOURCE, {TOKENIZER_SOURCE: mirror} if mirror else None)
    directory = Path(directory)
    tokenizer = download(source.url, directory / source.filename, size=source.size, sha256=source.sha256,
                         md5=source.md5, expect=source.expect, retries=retries, timeout=timeout, progress=progress,
                         checksum_lock=lock if source.record_checksum and source.sha256 is None else None,
                         checksum_key=source.name)
    config = directory / "config.json"
    with atomic_path(config) as tmp:
        shutil.copyfile(SHIPPED_TEXT_CONFIG_DIR / "config.json", tmp)
    return {"dir": str(directory), "source": source.url, "checksum": "none" if source.unverified else "verified",
            "files": [file_record(Path(tokenizer)), file_record(config)]}


# ----------------------------------------------------------------------------------------------- registration


def model_config(tokenizer: str | os.PathLike | None = None, path: Path = CONFIG_PATH) -> dict:
    """The open_clip model config of CLIPpy with the text sources resolved (see :func:`text_sources`)."""
    cfg = json.loads(Path(path).read_text())
    sources = text_sources(tokenizer)
    text_cfg = cfg["text_cfg"]
    if text_cfg.get("hf_model_name") == TEXT_REPO:
        text_cfg["hf_model_name"] = sources["model"]
    if text_cfg.get("hf_tokenizer_name") == TEXT_REPO:
        text_cfg["hf_tokenizer_name"] = sources["tokenizer"]
    return cfg


def register(name: str = MODEL_NAME, cfg: dict | None = None, tokenizer: str | os.PathLike | None = None) -> str:
    """Make ``name`` an open_clip model name (``open_clip.create_model(name)``, ``load_model(name)``).

    ``cfg`` defaults to CLIPpy's config (:func:`model_config`); re-registering replaces the earlier entry, so a
    tokenizer fetched later in the same process is picked up. :func:`load` calls this for ``clippy-B-16``; importing
    this module registers nothing.
    """
    _register_timm_entry_point()
    _register_t5_architecture()
    cfg = model_config(tokenizer) if cfg is None else copy.deepcopy(cfg)
    return add_open_clip_config(name, cfg)


def is_clippy(model: str) -> bool:
    """Does ``model`` name a registered config with CLIPpy's towers (a timm image tower and an HF text tower)?"""
    cfg = open_clip.get_model_config(model)
    return bool(cfg) and "timm_model_name" in cfg.get("vision_cfg", {}) and "hf_model_name" in cfg.get("text_cfg", {})


def matches(model: str) -> bool:
    """Is ``model`` loaded by :func:`load`: CLIPpy itself, or a name (not a path) registered with CLIPpy's towers?"""
    return model == MODEL_NAME or (not Path(model).exists() and is_clippy(model))


# ------------------------------------------------------------------------------------------------ checkpoints


def convert_state_dict(state: Mapping[str, torch.Tensor], source: str | os.PathLike = "checkpoint"
                       ) -> dict[str, torch.Tensor]:
    """Rename the keys of a CLIPpy training checkpoint to this config's.

    The replication saved ``{"state_dict": ...}`` from a DistributedDataParallel model (keys ``module.*``) whose text
    tower was a ``SentenceTransformer``: ``text.0.auto_model.{shared,encoder.*}`` (T5 encoder), ``text.1`` (pooling, no
    weights), ``text.2.linear.weight`` (dense layer), ``text.3`` (normalisation, no weights). The image tower keys
    (``visual.trunk.*``) and ``logit_scale`` keep their names. Keys already in this config's naming pass through;
    anything else is an InputError (a foreign checkpoint must not half-load).
    """
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    converted: dict[str, torch.Tensor] = {}
    shared_embedding = None
    unknown = []
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key.startswith("text.0.auto_model.encoder."):
            converted["text.transformer." + key[len("text.0.auto_model.encoder."):]] = value
        elif key == "text.0.auto_model.shared.weight":
            shared_embedding = value  # tied to encoder.embed_tokens; used only if that key is missing
        elif key.startswith("text.2.linear."):
            converted["text.proj." + key[len("text.2.linear."):]] = value
        elif key.startswith(("visual.trunk.", "text.transformer.", "text.proj.")) or key == "logit_scale":
            converted[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise InputError(source, "state_dict", f"a CLIPpy checkpoint (keys visual.trunk.*, text.0.auto_model.*, "
                         f"text.2.linear.*, logit_scale), found {len(unknown)} others such as {unknown[0]!r}")
    if "text.transformer.embed_tokens.weight" not in converted and shared_embedding is not None:
        converted["text.transformer.embed_tokens.weight"] = shared_embedding
    return converted


def load_checkpoint_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a CLIPpy checkpoint (.pt from the release, or an already converted .pt/.safetensors) and convert it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint", "an existing CLIPpy checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # mmap needs the zip format; older pickles load without it
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # unpickling refused or corrupt file: one line for the user
            raise InputError(path, "checkpoint", f"a torch state dict loadable with weights_only=True "
                             f"({' '.join(str(err).split())[:200]})") from None
    if not isinstance(state, Mapping):
        raise InputError(path, "checkpoint", f"a state dict (a mapping), got {type(state).__name__}")
    return convert_state_dict(state, path)


def save_converted(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the converted weights of a CLIPpy checkpoint as .safetensors (loadable by open_clip and by
    ``load_model("clippy-B-16", checkpoint=out)``), without the optimiser state of the training checkpoint."""
    from safetensors.torch import save_file

    from clipxai.io import atomic_path

    state = {k: v.contiguous() for k, v in load_checkpoint_state(checkpoint).items()}
    with atomic_path(out) as tmp:
        save_file(state, str(tmp))
    return Path(out)


def resolve_weights(pretrained: str | None, checkpoint: str | os.PathLike | None,
                    weights_stamp: str | os.PathLike | None = None) -> Path | None:
    """The checkpoint file to load: ``checkpoint``; else the file a ``clipxai fetch-weights`` stamp records; else a
    catalogued tag (``clippy_5k``) in the default weights cache; None for random weights."""
    if pretrained and checkpoint:
        raise InputError(checkpoint, "--checkpoint", "either --pretrained or --checkpoint, not both")
    if checkpoint is not None:
        return Path(checkpoint)
    if not pretrained:
        return None
    if weights_stamp is not None:
        try:
            record = json.loads(Path(weights_stamp).read_text())
            return Path(record["files"][0]["path"])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            raise InputError(weights_stamp, "files[0].path", "a fetch-weights stamp naming the checkpoint") from None
    from clipxai.data import sources

    source = sources.SOURCES.get(pretrained)
    if source is None or source.kind != "weights":
        weights = ", ".join(n for n, s in sources.SOURCES.items() if s.kind == "weights")
        raise InputError("--pretrained", "pretrained", f"a catalogued checkpoint ({weights}), not {pretrained!r}")
    path = Path(os.path.expanduser(DEFAULT_WEIGHTS_CACHE)) / source.filename
    if not path.is_file():
        raise InputError(path, "weights", f"the checkpoint fetched by `clipxai fetch-weights --model {MODEL_NAME} "
                         f"--pretrained {pretrained} --stamp ...`")
    return path


# ------------------------------------------------------------------------------------------------------ loading


def _grid_of_timm(visual: torch.nn.Module) -> tuple[int, int]:
    return tuple(int(g) for g in visual.trunk.patch_embed.grid_size)


def load(model: str = MODEL_NAME, pretrained: str | None = None, checkpoint: str | os.PathLike | None = None,
         device: str | torch.device = "cpu", weights_stamp: str | os.PathLike | None = None,
         tokenizer: str | os.PathLike | None = None) -> LoadedModel:
    """Build a CLIPpy-style model (open_clip config with a timm image tower and an HF text tower) and load weights.

    Unlike open_clip's loader (:func:`clipxai.models.registry.load_open_clip`), random initialisation really is
    random for both towers (open_clip would otherwise download pretrained T5 weights), and the released checkpoint
    is converted on load.
    ``tokenizer``: a local tokenizer folder instead of the hub's Sentence-T5 tokenizer.
    """
    if pretrained and checkpoint:
        raise InputError(checkpoint, "--checkpoint", "either --pretrained or --checkpoint, not both")
    stamp_file = checkpoint if is_weights_stamp(checkpoint) else (weights_stamp if pretrained else None)
    if stamp_file is not None:
        # the workflow's jobs: exactly the checkpoint (and the text-tower files) fetch-weights recorded
        stamp = read_weights_stamp(stamp_file)
        weights = stamp.path
        if tokenizer is None and stamp.tokenizer is not None:
            tokenizer = stamp.tokenizer
    else:
        weights = resolve_weights(pretrained, checkpoint)
    if model == MODEL_NAME:
        register(tokenizer=tokenizer)
    elif not is_clippy(model):
        raise InputError(model, "--model", "a registered CLIPpy-style open_clip config (timm image tower, Hugging "
                         "Face text tower)")
    device = torch.device(device)
    cfg = open_clip.get_model_config(model)
    tokenizer_source = cfg["text_cfg"].get("hf_tokenizer_name", "")
    if not tokenizer_available(tokenizer_source) and os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", ""):
        raise InputError(tokenizer_source, "tokenizer", "the Sentence-T5 tokenizer in the Hugging Face cache "
                         "(offline: fill it once with clipxai.models.clippy.prefetch_text_tower())")
    clip, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=None, pretrained_image=False,
                                                                pretrained_text=False, device="cpu")
    if weights is not None:
        state = load_checkpoint_state(weights)
        result = clip.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            problems = [f"missing {k}" for k in result.missing_keys] + [f"unexpected {k}" for k in
                                                                         result.unexpected_keys]
            raise InputError(weights, "state_dict", f"weights matching {model} ({len(problems)} mismatches, "
                             f"first: {problems[0]})")
    clip.to(device).eval()
    try:
        text_tokenizer = open_clip.get_tokenizer(model)
    except OSError as err:
        raise InputError(tokenizer_source, "tokenizer", "the Sentence-T5 tokenizer (in the Hugging Face cache, or "
                         "downloadable; clipxai.models.clippy.prefetch_text_tower() fetches it) "
                         f"({' '.join(str(err).split())[:160]})") from None
    image_size = int(clip.visual.image_size[0])
    cfg_pre = getattr(clip.visual, "preprocess_cfg", {}) or {}
    log.info("loaded %s (weights: %s; text config: %s) on %s: %d px, grid %s", model, weights or "random init",
             cfg["text_cfg"].get("hf_model_name"), device, image_size, _grid_of_timm(clip.visual))
    return LoadedModel(model=clip, preprocess=preprocess, tokenizer=text_tokenizer, name=model,
                       image_size=image_size, grid=_grid_of_timm(clip.visual),
                       context_length=int(getattr(text_tokenizer, "context_length", 77)),
                       mean=tuple(cfg_pre.get("mean", open_clip.OPENAI_DATASET_MEAN)),
                       std=tuple(cfg_pre.get("std", open_clip.OPENAI_DATASET_STD)), device=device)

