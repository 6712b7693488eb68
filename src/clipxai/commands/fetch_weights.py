"""``clipxai fetch-weights --model NAME --pretrained TAG --stamp FILE``: fill the weights cache on a node with internet.

GPU jobs run on compute nodes without internet; they find the weights in the cache this verb fills:

- an open_clip pretrained tag goes through open_clip's own download helper (``open_clip.pretrained.
  download_pretrained``, the function ``create_model(name, pretrained=tag, cache_dir=...)`` calls), so the files
  land exactly where open_clip looks for them later (the Hugging Face hub cache for hub-hosted tags; with
  ``HF_HUB_OFFLINE=1`` a compute node then reads them without any network access);
- a tag that open_clip only knows by URL, and a catalogued checkpoint such as CLIPpy's ``clippy_5k``, go through
  :func:`clipxai.data.download.download` (verified, atomic, resumable) into ``--cache-dir`` under the file name
  open_clip's URL cache uses.

Then a small stamp (model, tag, where from, files with size and sha256) is written atomically: the workflow's
output for this step, and the record of exactly which bytes the results came from.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import urllib.parse
from pathlib import Path

from clipxai.data import sources
from clipxai.data.download import DownloadError, download, record_checksum, recorded_checksum
from clipxai.errors import InputError
from clipxai.io import write_json
from clipxai.commands import _args

NAME = "fetch-weights"
HELP = "download a model's pretrained weights into the open_clip / Hugging Face cache and write a stamp file"

log = logging.getLogger(__name__)

# open_clip's default cache for URL-addressed weights (download_pretrained_from_url).
OPEN_CLIP_URL_CACHE = "~/.cache/clip"
# The catalogue entry of CLIPpy's Sentence-T5 tokenizer (its text tower's vocabulary; the weights come with CLIPpy's).
TOKENIZER_SOURCE = "sentence_t5_base_tokenizer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="open_clip model name (e.g. ViT-B-16, ViT-B-32-quickgelu)")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--pretrained", help="open_clip pretrained tag (e.g. laion2b_s34b_b88k) or "
                         "a catalogued checkpoint (" + ", ".join(n for n, s in sources.SOURCES.items()
                                                               if s.kind == "weights") + ")")
    weights.add_argument("--checkpoint", type=Path, help="a local state dict or open_clip model folder instead "
                         "(recorded with its size and sha256; config `checkpoint:`)")
    _args.add_output(parser, "--cache-dir", kind="dir", type=Path,
                     help="weights cache (default: open_clip's: the Hugging Face hub "
                     f"cache for hub-hosted tags, {OPEN_CLIP_URL_CACHE} for URL-addressed ones)")
    _args.add_output(parser, "--stamp", required=True, type=Path, help="JSON record of the fetched files, written last")
    parser.add_argument("--url", help="take the checkpoint from this URL / local path instead (a mirror)")
    for prefix, what in (("", "the --url mirror's file"), ("tokenizer-", "the tokenizer mirror's file")):
        parser.add_argument(f"--{prefix}sha256", help=f"sha256 of {what} (a mirror serving other bytes)")
        parser.add_argument(f"--{prefix}md5", help=f"md5 of {what}")
        parser.add_argument(f"--{prefix}size", type=int, help=f"size in bytes of {what}")
        parser.add_argument(f"--{prefix}no-checksum", action="store_true",
                            help=f"download {what} unverified (config `checksum: none`)")
    parser.add_argument("--tokenizer-url", help="CLIPpy: take the Sentence-T5 tokenizer.json from this URL / path")
    parser.add_argument("--text-tower-dir", type=Path, help="CLIPpy: where the text tower's tokenizer and config go "
                        "(default: text-tower/ beside the stamp)")
    _args.add_output(parser, "--lock", type=Path,
                     help="checksum lock file for checkpoints without a published checksum")
    parser.add_argument("--check-load", action="store_true",
                        help="also build the open_clip model from the fetched file (strict state-dict load)")
    parser.add_argument("--retries", type=int, default=4, help="retries per failure (default 4)")
    parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds (default 60)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _url_sha256(url: str) -> str | None:
    """The full sha256 OpenAI's CDN puts in its URLs (``.../models/<sha256>/ViT-B-32.pt``), else None."""
    parts = urllib.parse.urlparse(url).path.split("/")
    if "openaipublic" in url and len(parts) >= 2 and len(parts[-2]) == 64:
        return parts[-2].lower()
    return None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _mirror(url: str | None, sha256: str | None = None, md5: str | None = None, size: int | None = None,
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


def _file_record(path: Path) -> dict:
    return {"path": str(path), "size": path.stat().st_size, "sha256": _sha256(path)}


def fetch_text_tower(directory: str | Path, mirror: dict | None = None, *, lock: str | Path | None = None,
                     retries: int = 4, timeout: float = 60.0, progress: bool = True) -> dict:
    """CLIPpy's text tower without its weights (the checkpoint has them): the Sentence-T5 tokenizer downloaded
    (verified; pinned in the lock at first download) beside the shipped T5 config, in one folder a compute node
    builds the tokenizer from offline. Returns the stamp's ``tokenizer`` record."""
    import shutil

    from clipxai.io import atomic_path
    from clipxai.models import clippy

    source = sources.resolve(TOKENIZER_SOURCE, {TOKENIZER_SOURCE: mirror} if mirror else None)
    directory = Path(directory)
    tokenizer = download(source.url, directory / source.filename, size=source.size, sha256=source.sha256,
                         md5=source.md5, expect=source.expect, retries=retries, timeout=timeout, progress=progress,
                         checksum_lock=lock if source.record_checksum and source.sha256 is None else None,
                         checksum_key=source.name)
    config = directory / "config.json"
    with atomic_path(config) as tmp:
        shutil.copyfile(clippy.SHIPPED_TEXT_CONFIG_DIR / "config.json", tmp)
    return {"dir": str(directory), "source": source.url, "checksum": "none" if source.unverified else "verified",
            "files": [_file_record(Path(tokenizer)), _file_record(config)]}


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
        files, model_dir = [_file_record(Path(weights)), _file_record(config)], str(path)
    elif path.is_file():
        files, model_dir = [_file_record(path)], None
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
    digest, size = _sha256(path), path.stat().st_size
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


def _is_clippy_style(model: str) -> bool:
    from clipxai.models import clippy

    return model == clippy.MODEL_NAME or clippy.is_clippy(model)


def run(args: argparse.Namespace) -> int:
    mirror = _mirror(args.url, args.sha256, args.md5, args.size, args.no_checksum)
    if args.checkpoint is not None:
        if mirror is not None:
            raise InputError("fetch-weights", "--url", "no mirror beside --checkpoint (a local file)")
        record = record_checkpoint(args.model, args.checkpoint)
    else:
        record = fetch_weights(args.model, args.pretrained, cache_dir=args.cache_dir, lock=args.lock,
                               check_load=args.check_load, retries=args.retries, timeout=args.timeout,
                               progress=not args.no_progress, mirror=mirror)
    if _is_clippy_style(args.model):
        # the text tower's tokenizer: compute nodes have no hub access, so it is fetched here with the weights
        tokenizer_mirror = _mirror(args.tokenizer_url, args.tokenizer_sha256, args.tokenizer_md5,
                                   args.tokenizer_size, args.tokenizer_no_checksum)
        record["tokenizer"] = fetch_text_tower(args.text_tower_dir or args.stamp.parent / "text-tower",
                                               tokenizer_mirror, lock=args.lock, retries=args.retries,
                                               timeout=args.timeout, progress=not args.no_progress)
    write_json(args.stamp, record)
    log.info("weights of %s/%s: %s", args.model, args.pretrained, record["files"][0]["path"])
    return 0
