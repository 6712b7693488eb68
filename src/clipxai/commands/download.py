"""``clipxai download SOURCE --dest PATH``: fetch one catalogued source, verified and atomic, optionally unpacked.

Mirrors the workflow's download rules. Failure prints one line (the URL and what was wrong) and leaves nothing
that looks complete: ``PATH`` appears only after verification, extracted entries appear by rename. Retries are
bounded (``--retries`` in a row, ``--max-attempts`` and ``--max-time`` in all); ``PATH.lock`` keeps a second
download of the same ``PATH`` waiting (``--lock-wait``) until the first is done, download and extraction both.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from clipxai.data import sources
from clipxai.data.download import (EXTRACT_FLOOR_BYTES, EXTRACT_RATIO, MAX_ATTEMPTS, MAX_TIME_S, check_target,
                                   destination_lock, download, extract, recorded_checksum)
from clipxai.errors import InputError
from clipxai.io import write_json
from clipxai.commands import _args

NAME = "download"
HELP = "download one catalogued data source (verified size/checksum, atomic, resumable), optionally extract it"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help=f"catalogue name: {', '.join(sources.names())}")
    _args.add_output(parser, "--dest", required=True, type=Path, help="where the downloaded file goes")
    parser.add_argument("--url", help="override the catalogue URL: a mirror, a file:// URL or a local path "
                        "(required for licence-bound sources)")
    parser.add_argument("--sha256", help="override the expected sha256 (only if the mirror serves other bytes)")
    parser.add_argument("--md5", help="override the expected md5")
    parser.add_argument("--size", type=int, help="override the expected size in bytes")
    parser.add_argument("--no-checksum", action="store_true", help="a mirror whose bytes differ from the "
                        "catalogue's and have no known checksum: download it unverified (config `checksum: none`)")
    _args.add_output(parser, "--lock", type=Path, help="checksum lock file (e.g. config/checksums.lock.yaml): sources "
                        "without a published checksum are pinned there at first download and checked after")
    _args.add_output(parser, "--extract-to", kind="dir", type=Path, metavar="DIR", help="unpack the archive into DIR")
    parser.add_argument("--member", action="append", metavar="PATTERN", dest="members",
                        help="extract only members matching PATTERN (name, folder or shell pattern; repeatable; "
                        "default: the catalogue's choice)")
    parser.add_argument("--remove-archive", action="store_true",
                        help="delete the downloaded archive once it is extracted")
    _args.add_output(parser, "--stamp", type=Path, help="write a JSON record of what was fetched here, last (a "
                        "Snakemake output for rules whose real output is a folder)")
    parser.add_argument("--retries", type=int, default=4, help="retries in a row without progress (default 4)")
    parser.add_argument("--backoff", type=_positive(float), default=2.0, metavar="SECONDS",
                        help="wait before the first retry, doubling after each failure in a row (default 2)")
    parser.add_argument("--max-attempts", type=_positive(int), default=MAX_ATTEMPTS, metavar="N",
                        help=f"attempts in all, reconnections that made progress included (default {MAX_ATTEMPTS})")
    parser.add_argument("--max-time", type=_positive(float), default=MAX_TIME_S, metavar="SECONDS",
                        help=f"give up the download after this long, waits included (default {MAX_TIME_S:g})")
    parser.add_argument("--lock-wait", type=_positive(float), metavar="SECONDS",
                        help="how long to wait for another download of the same --dest (default: --max-time)")
    parser.add_argument("--max-extract-bytes", type=_positive(int), metavar="BYTES",
                        help=f"cap on the bytes extracted (default {EXTRACT_RATIO} times the archive's size, at "
                        f"least {EXTRACT_FLOOR_BYTES})")
    parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds (default 60)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def run(args: argparse.Namespace) -> int:
    override = {k: getattr(args, k) for k in ("url", "sha256", "md5", "size") if getattr(args, k) is not None}
    if args.no_checksum:
        if set(override) - {"url"}:
            raise InputError("download", "--no-checksum", "no --sha256/--md5/--size beside it")
        override["checksum"] = "none"
    source = sources.resolve(args.source, {args.source: override} if override else None)
    lock = args.lock if source.record_checksum and source.sha256 is None else None
    if source.unverified:
        log.warning("%s: downloading %s unverified (checksum: none)", source.name, source.url)
    elif source.record_checksum and args.lock is None:
        log.warning("%s publishes no checksum and no --lock was given: its content is not pinned", source.name)
    lock_wait = args.max_time if args.lock_wait is None else args.lock_wait
    check_target(source.url, args.dest)  # before the lock, which creates the folder
    # One lock for download and extraction: a second job must not unpack (or remove) an archive still in use.
    with destination_lock(args.dest, lock_wait):
        path = download(source.url, args.dest, size=source.size, sha256=source.sha256, md5=source.md5,
                        expect=source.expect, retries=args.retries, backoff=args.backoff, timeout=args.timeout,
                        progress=not args.no_progress, checksum_lock=lock, checksum_key=source.name,
                        max_attempts=args.max_attempts, max_time=args.max_time, lock=False)
        if args.extract_to is not None:
            members = args.members if args.members else source.members
            extract(path, args.extract_to, members, nested=source.nested, max_bytes=args.max_extract_bytes)
            if args.remove_archive:
                path.unlink()
    if args.stamp is not None:
        sha256 = source.sha256
        if sha256 is None and lock is not None:
            sha256 = (recorded_checksum(lock, source.name) or {}).get("sha256")
        write_json(args.stamp, {
            "source": source.name, "url": source.url, "file": str(args.dest),
            "archive_removed": bool(args.extract_to is not None and args.remove_archive),
            "extracted_to": None if args.extract_to is None else str(args.extract_to),
            "members": None if args.extract_to is None else list(args.members or source.members or []) or None,
            "size": source.size, "sha256": sha256, "md5": source.md5,
            "checksum": "none" if source.unverified else "verified",
            "lock": None if lock is None else str(lock)})
    return 0
