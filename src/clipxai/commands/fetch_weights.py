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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="open_clip model name (e.g. ViT-B-16, ViT-B-32-quickgelu)")
    parser.add_argument("--pretrained", required=True, help="open_clip pretrained tag (e.g. laion2b_s34b_b88k) or "
                        "a catalogued checkpoint (" + ", ".join(n for n, s in sources.SOURCES.items()
                                                              if s.kind == "weights") + ")")
    _args.add_output(parser, "--cache-dir", kind="dir", type=Path,
                     help="weights cache (default: open_clip's: the Hugging Face hub "
                        f"cache for hub-hosted tags, {OPEN_CLIP_URL_CACHE} for URL-addressed ones)")
    _args.add_output(parser, "--stamp", required=True, type=Path, help="JSON record of the fetched files, written last")
    parser.add_argument("--url", help="take the checkpoint from this URL / local path instead (a mirror)")
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


def fetch_weights(model: str, pretrained: str, *, cache_dir: str | Path | None = None, url: str | None = None,
                  lock: str | Path | None = None, check_load: bool = False, retries: int = 4,
                  timeout: float = 60.0, progress: bool = True) -> dict:
    """Put the weights of (``model``, ``pretrained``) into the cache; returns the stamp record (not written).

    InputError (one line) when the tag is unknown or the download fails or does not verify.
    """
    import open_clip  # heavy import: only when weights are really fetched

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
        if catalogued is not None and not cfg:
            source = sources.resolve(pretrained, {pretrained: url} if url else None)
            url, sha256, filename = source.url, source.sha256, source.filename
        else:
            url = url if url is not None else cfg["url"]
            sha256 = _url_sha256(url)
            filename = os.path.basename(urllib.parse.urlparse(url).path) or f"{model}_{pretrained}.pt"
        directory = Path(os.path.expanduser(str(cache_dir) if cache_dir is not None else OPEN_CLIP_URL_CACHE))
        origin = url
        path = download(url, directory / filename, sha256=sha256, expect="torch",
                        checksum_lock=lock if sha256 is None else None, checksum_key=key, retries=retries,
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


def run(args: argparse.Namespace) -> int:
    record = fetch_weights(args.model, args.pretrained, cache_dir=args.cache_dir, url=args.url, lock=args.lock,
                           check_load=args.check_load, retries=args.retries, timeout=args.timeout,
                           progress=not args.no_progress)
    write_json(args.stamp, record)
    log.info("weights of %s/%s: %s", args.model, args.pretrained, record["files"][0]["path"])
    return 0
