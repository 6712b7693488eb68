"""Pretrained weights on disk: fetching them into the cache on a node with internet, and the stamp that records
exactly which bytes were fetched (read back, and verified, by every job that loads them).

GPU jobs run on compute nodes without internet; they find the weights in the cache :func:`fetch_weights` fills:

- an open_clip pretrained tag goes through open_clip's own download helper (``open_clip.pretrained.
  download_pretrained``, the function ``create_model(name, pretrained=tag, cache_dir=...)`` calls), so the files
  land exactly where open_clip looks for them later (the Hugging Face hub cache for hub-hosted tags; with
  ``HF_HUB_OFFLINE=1`` a compute node then reads them without any network access);
- a tag that open_clip only knows by URL, and a catalogued checkpoint such as CLIPpy's ``clippy_5k``, go through
  :func:`clipxai.data.download.download` (verified, atomic, resumable) into the cache directory under the file
  name open_clip's URL cache uses.

The stamp (model, tag, where from, files with size and sha256) is the record these functions return; ``clipxai
fetch-weights`` writes it. CLIPpy's text-tower files come from :func:`clipxai.models.clippy.fetch_text_tower`.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from clipxai.data import sources
from clipxai.data.download import DownloadError, download, record_checksum, recorded_checksum
from clipxai.errors import InputError
from clipxai.io import sha256_file

# open_clip's default cache for URL-addressed weights (download_pretrained_from_url).
OPEN_CLIP_URL_CACHE = "~/.cache/clip"


# ----------------------------------------------------------------------------------------------------- stamps


@dataclass(frozen=True)
class WeightsStamp:
    """What ``clipxai fetch-weights`` recorded: the weights file (verified again on load), the tag it stands for
    (its preprocessing applies), and CLIPpy's text-tower folder (tokenizer + config) when fetched."""

    path: Path
    pretrained: str | None
    tokenizer: Path | None
    model_dir: Path | None


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
        if path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            raise InputError(stamp, "files.sha256", f"{path} with sha256 {entry['sha256']} as fetched; it changed "
                             "since (fetch the weights again)")
    tokenizer = record.get("tokenizer")
    return WeightsStamp(path=Path(weights["path"]), pretrained=record.get("pretrained") or None,
                        tokenizer=Path(tokenizer["dir"]) if tokenizer else None,
                        model_dir=Path(record["model_dir"]) if record.get("model_dir") else None)


def check_stamp_files(stamp: Path, field: str) -> None:
    """A fetch-weights stamp given as a checkpoint, checked cheaply up front: it parses and its files are there
    with the recorded sizes (their sha256 is checked when the model is loaded: :func:`read_weights_stamp`)."""
    try:
        record = json.loads(stamp.read_text())
        entries = record["files"] + list((record.get("tokenizer") or {}).get("files", []))
        checks = [(Path(entry["path"]), int(entry["size"])) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(stamp, field, "a state dict, or a clipxai fetch-weights stamp (files: [{path, size, "
                         "sha256}])") from None
    if not checks:
        raise InputError(stamp, f"{field} files", "at least one fetched file")
    for path, size in checks:
        if not path.is_file() or path.stat().st_size != size:
            raise InputError(stamp, f"{field} files.path", f"the fetched file {path} of {size} bytes (fetch the "
                             "weights again)")


def file_record(path: Path) -> dict:
    """A stamp's entry for one fetched file."""
    return {"path": str(path), "size": path.stat().st_size, "sha256": sha256_file(path)}


# --------------------------------------------------------------------------------------------------- fetching


def mirror_override(url: str | None, sha256: str | None = None, md5: str | None = None, size: int | None = None,
                    no_checksum: bool = False) -> dict | None:
    """A `sources:`-style override from the command line: None (catalogue), {url} or {url, checksums}."""
    checks = {k: v for k, v in (("sha256", sha256), ("md5", md5), ("size", size)) if v is not None}
    if url is None:
        if checks or no_checksum:
            raise InputError("fetch-weights", "--url", "a mirror URL beside its --sha256/--md5/--size/--no-checksum")
        return None
    if no_checksum:
        if checks:
            raise InputError("fetch-weights", "--no-checksum", "no --sha256/--md5/--size beside it")
        return {"url": url, "checksum": "none"}
    return {"url": url, **checks}


def _url_sha256(url: str) -> str | None:
    """The full sha256 OpenAI's CDN puts in its URLs (``.../models/<sha256>/ViT-B-32.pt``), else None."""
    parts = urllib.parse.urlparse(url).path.split("/")
    if "openaipublic" in url and len(parts) >= 2 and len(parts[-2]) == 64:
        return parts[-2].lower()
    return None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def record_checkpoint(model: str, checkpoint: str | Path) -> dict:
    """The stamp of a local checkpoint (config `checkpoint:`): a state-dict file, or an open_clip model folder
    (``open_clip_config.json`` + weights) whose weights file comes first."""
    import open_clip

    path = Path(checkpoint)
    if path.is_dir():
        config = path / "open_clip_config.json"
        weights = open_clip.factory._find_checkpoint_in_dir(path)
        if not config.is_file() or weights is None:
            raise InputError(path, "checkpoint", "an open_clip model folder (open_clip_config.json + weights)")
        files, model_dir = [file_record(Path(weights)), file_record(config)], str(path)
    elif path.is_file():
        files, model_dir = [file_record(path)], None
    else:
        raise InputError(path, "checkpoint", f"an existing state dict or open_clip model folder for {model}")
    return {"model": model, "pretrained": None, "source": f"checkpoint:{path}", "cache_dir": None,
            "model_dir": model_dir, "files": files, "checked_load": False}


def fetch_weights(model: str, pretrained: str, *, cache_dir: str | Path | None = None, url: str | None = None,
                  lock: str | Path | None = None, check_load: bool = False, retries: int = 4,
                  timeout: float = 60.0, progress: bool = True, mirror: dict | None = None) -> dict:
    """Put the weights of (``model``, ``pretrained``) into the cache; returns the stamp record (not written).

    ``mirror`` (a `sources:` mapping: url plus the mirror's own sha256/md5/size, or checksum none) replaces ``url``.
    InputError (one line) when the tag is unknown or the download fails or does not verify.
    """
    import open_clip  # heavy import: only when weights are really fetched

    if mirror is not None:
        url = mirror["url"]
    cfg = open_clip.pretrained.get_pretrained_cfg(model, pretrained)
    catalogued = sources.SOURCES.get(pretrained)
    if catalogued is not None and catalogued.kind != "weights":
        catalogued = None
    key = catalogued.name if (catalogued is not None and not cfg) else f"{model}:{pretrained}"
    verified_by_download = False

    if url is None and cfg and cfg.get("hf_hub") and open_clip.pretrained.has_hf_hub():
        origin = f"hf_hub:{cfg['hf_hub']}"
        try:
            path = Path(open_clip.pretrained.download_pretrained(
                cfg, cache_dir=None if cache_dir is None else str(cache_dir)))
        except Exception as err:  # hub errors come in many types; the user needs the one line
            raise DownloadError(origin, "weights", f"{model}/{pretrained} from the Hugging Face hub",
                                _one_line(err)) from None
    elif url is not None or (cfg and cfg.get("url")) or (catalogued is not None and not cfg):
        size = md5 = None
        unverified = bool(mirror and mirror.get("checksum") == "none")
        if catalogued is not None and not cfg:
            source = sources.resolve(pretrained, {pretrained: mirror or url} if url else None)
            url, sha256, filename = source.url, source.sha256, source.filename
            size, md5 = source.size, source.md5
        else:
            url = url if url is not None else cfg["url"]
            sha256 = (mirror or {}).get("sha256") or (None if mirror else _url_sha256(url))
            size, md5 = (mirror or {}).get("size"), (mirror or {}).get("md5")
            filename = os.path.basename(urllib.parse.urlparse(url).path) or f"{model}_{pretrained}.pt"
        directory = Path(os.path.expanduser(str(cache_dir) if cache_dir is not None else OPEN_CLIP_URL_CACHE))
        origin = url
        pinned = sha256 is not None or md5 is not None or size is not None or unverified
        path = download(url, directory / filename, sha256=sha256, md5=md5, size=size, expect="torch",
                        checksum_lock=None if pinned else lock, checksum_key=key, retries=retries,
                        timeout=timeout, progress=progress)
        verified_by_download = True
    elif cfg and cfg.get("file"):
        origin = path = Path(cfg["file"])
        if not path.is_file():
            raise InputError(path, "pretrained file", f"an existing checkpoint for {model}/{pretrained}")
    else:
        tags = open_clip.pretrained.list_pretrained_tags_by_model(model)
        weights = [n for n, s in sources.SOURCES.items() if s.kind == "weights"]
        raise InputError("fetch-weights", "pretrained", f"an open_clip tag of {model} ({', '.join(tags) or 'none'})"
                         f" or a catalogued checkpoint ({', '.join(weights)}), not {pretrained!r}")

    path = Path(path)
    if check_load:
        if model not in open_clip.list_models():
            raise InputError("fetch-weights", "model", f"an open_clip model name for --check-load, not {model!r}")
        try:
            open_clip.create_model(model, pretrained=str(path), device="cpu")
        except Exception as err:  # a truncated or foreign state dict: say so in one line
            raise InputError(path, "checkpoint", f"weights that load into {model} ({_one_line(err)})") from None
    digest, size = sha256_file(path), path.stat().st_size
    if lock is not None and not verified_by_download:
        # Hub files carry no checksum we can pin in config: the first fetch pins them, as for data sources.
        entry = recorded_checksum(lock, key)
        if entry is None:
            record_checksum(lock, key, digest, size)
        elif entry["sha256"] != digest:
            raise DownloadError(str(origin), "sha256", f"{entry['sha256']} (recorded in {lock})", digest)
    return {
        "model": model,
        "pretrained": pretrained,
        "source": str(origin),
        "cache_dir": None if cache_dir is None else str(cache_dir),
        "files": [{"path": str(path), "size": size, "sha256": digest}],
        "checked_load": bool(check_load),
    }
