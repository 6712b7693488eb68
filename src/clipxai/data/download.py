"""Verified, atomic, resumable downloads and safe archive extraction.

Every download rule of the workflow goes through :func:`download`:

- bytes are written to ``<dest>.part``; the file appears at ``dest`` only after its content type, size and
  checksums verified, so an interrupted or failed download never leaves a file that looks complete;
- a ``.part`` left by an interrupted run is resumed with an HTTP ``Range`` request (a server that ignores
  ``Range`` answers 200 and the download restarts from byte 0);
- connection errors, truncated transfers and 5xx answers are retried with exponential backoff;
- a 404, an HTML page where an archive was expected, a wrong size or checksum end with one
  :class:`DownloadError` line naming the URL and what was wrong, and the bad ``.part`` is removed (a ``.part`` that
  failed verification must never be resumed);
- ``file://`` URLs and plain local paths (a lab mirror, a local copy) go through the same verification;
- sources whose checksum is not published are pinned by their first download in a lock file
  (:func:`recorded_checksum` / :func:`record_checksum`); later downloads must match it.

:func:`extract` unpacks zip (including zips inside the zip), tar and tar.gz archives into a directory, refusing
members that would land outside it, and publishes each top-level entry with a rename.

Standard library only (urllib); nothing touches the network at import time.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import http.client
import logging
import os
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable, Iterator

import yaml
from tqdm import tqdm

from clipxai.errors import InputError
from clipxai.io import write_text

log = logging.getLogger(__name__)

EXPECT_KINDS = ("zip", "tar", "gz", "json", "mat", "text", "torch")
CHUNK_BYTES = 1 << 20
# Bytes of the file head kept for content sniffing: enough for the tar magic (offset 257) and the HDF5 signature
# behind a MATLAB v7.3 user block (offset 512).
HEAD_BYTES = 1024
# Progress bars only for transfers where watching them is worth a log line.
PROGRESS_MIN_BYTES = 8 << 20
MAX_BACKOFF_S = 120.0
USER_AGENT = "clipxai-download/1 (+urllib)"


class DownloadError(InputError):
    """A download that cannot be completed or verified. One line: ``<url>: <what>: expected <x>[, got <y>]``."""

    def __init__(self, url: str, field: str, expected: str, got: str | None = None):
        super().__init__(url, field, expected if got is None else f"{expected}, got {got}")
        self.url = url
        self.got = got


class ArchiveError(InputError):
    """An archive that cannot be extracted safely (bad member path, link, unknown format, missing members)."""


# ---------------------------------------------------------------------------------------------- checksum lock


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock beside ``lock_path`` (parallel download jobs share one lock file)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    guard = lock_path.parent / f".{lock_path.name}.flock"
    with open(guard, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read_lock(lock_path: Path) -> dict:
    if not lock_path.exists():
        return {}
    try:
        data = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise InputError(lock_path, "yaml", f"a YAML mapping of recorded checksums ({err})") from None
    if not isinstance(data, dict):
        raise InputError(lock_path, "top level", "a mapping from source name to {sha256, size}")
    return data


def recorded_checksum(lock_path: str | Path, key: str) -> dict | None:
    """The ``{"sha256": ..., "size": ...}`` recorded for ``key`` in the lock file, or None if not recorded yet."""
    lock_path = Path(lock_path)
    entry = _read_lock(lock_path).get(key)
    if entry is None:
        return None
    if not isinstance(entry, dict) or not _is_hex(entry.get("sha256"), 64):
        raise InputError(lock_path, key, "a mapping with a 64-hex-digit sha256")
    return entry


def record_checksum(lock_path: str | Path, key: str, sha256: str, size: int) -> None:
    """Record the checksum of ``key``'s first download. An existing, different record is an error (never
    silently replaced: delete the line by hand if the upstream file really changed)."""
    lock_path = Path(lock_path)
    with _locked(lock_path):
        data = _read_lock(lock_path)
        old = data.get(key)
        if old is not None and old.get("sha256") != sha256:
            raise InputError(lock_path, key, f"sha256 {old.get('sha256')} (recorded earlier), not {sha256}")
        data[key] = {"sha256": sha256, "size": int(size)}
        header = ("# Checksums recorded at the first download of sources that publish none "
                  "(clipxai download --lock).\n# Later downloads must match. Delete an entry only if upstream "
                  "really changed the file.\n")
        write_text(lock_path, header + yaml.safe_dump(data, sort_keys=True, default_flow_style=False))


# ---------------------------------------------------------------------------------------------- content sniffing


def _is_hex(value, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value.lower())


def _looks_like_html(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<?xml"))


def sniff(head: bytes, expect: str | None) -> str | None:
    """Check the first bytes of a file against the expected kind. Returns None if they fit, else a short
    description of what they look like instead (for the error message)."""
    if expect is None:
        return "an HTML page" if _looks_like_html(head) else None
    if expect not in EXPECT_KINDS:
        raise ValueError(f"expect must be one of {EXPECT_KINDS}, not {expect!r}")
    if _looks_like_html(head):
        return "an HTML page"
    if not head:
        return "an empty file"
    hdf5 = b"\x89HDF\r\n\x1a\n"
    ok = {
        "zip": head.startswith((b"PK\x03\x04", b"PK\x05\x06")),
        "gz": head.startswith(b"\x1f\x8b"),
        "tar": head[257:262] == b"ustar",
        # MATLAB v7.3 files are HDF5 behind a 512-byte text header; older ones start with the same text.
        "mat": head.startswith(b"MATLAB") or any(head[o:o + 8] == hdf5 for o in (0, 512)),
        "json": head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["),
        "text": b"\x00" not in head,
        # torch.save writes a zip since torch 1.6, a pickle (protocol >= 2 starts with 0x80) before.
        "torch": head.startswith((b"PK\x03\x04", b"\x80")),
    }[expect]
    if ok:
        return None
    return f"bytes starting {head[:16]!r}"


_EXPECT_WORDS = {"zip": "a zip archive", "gz": "a gzip file", "tar": "a tar archive", "mat": "a MATLAB .mat file",
                 "json": "a JSON document", "text": "a text file", "torch": "a torch checkpoint"}


# ---------------------------------------------------------------------------------------------- sources of bytes


class _Transient(Exception):
    """A failure worth retrying (connection error, timeout, truncated transfer, 5xx)."""


def _local_path(url: str) -> Path | None:
    """The local file a ``file://`` URL or plain path names; None for network URLs."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https", "ftp"):
        return None
    if parsed.scheme and len(parsed.scheme) > 1:
        raise DownloadError(url, "scheme", "http, https, ftp, file or a local path", parsed.scheme)
    return Path(url)  # a plain path (a one-letter "scheme" would be a Windows drive)


@contextlib.contextmanager
def _open_source(url: str, offset: int, timeout: float) -> Iterator[tuple[BinaryIO, int, int | None]]:
    """Open ``url`` for reading from byte ``offset``. Yields ``(stream, start, total)``: ``start`` is where the
    stream really starts (0 when a server ignored the Range request), ``total`` the full size if known."""
    local = _local_path(url)
    if local is not None:
        if not local.is_file():
            raise DownloadError(url, "local file", "an existing regular file", "nothing there")
        total = local.stat().st_size
        with open(local, "rb") as fh:
            start = min(offset, total)
            fh.seek(start)
            yield fh, start, total
        return

    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            # Range beyond the end: the .part already holds everything or is longer than the file.
            yield _EmptyStream(), offset, None
            return
        if err.code >= 500 or err.code in (408, 429):
            raise _Transient(f"HTTP {err.code} {err.reason}") from None
        raise DownloadError(url, "HTTP status", "200 OK", f"{err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise _Transient(f"{type(reason).__name__}: {reason}") from None
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if response.status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range", ""))
            if start is None:
                raise _Transient("206 answer without a usable Content-Range")
        else:
            start, total = 0, length  # the server ignored Range (or none was sent): whole file from byte 0
        yield response, start, total


class _EmptyStream:
    def read(self, _n: int = -1) -> bytes:
        return b""


def _parse_content_range(value: str) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` -> (100, 1000); total None when ``*``."""
    try:
        unit, _, rest = value.strip().partition(" ")
        span, _, total = rest.partition("/")
        first = int(span.split("-")[0])
        return (first, None if total.strip() == "*" else int(total)) if unit == "bytes" else (None, None)
    except ValueError:
        return None, None


# ---------------------------------------------------------------------------------------------- download


def _hash_file(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    hashers = {name: hashlib.new(name) for name in algorithms}
    if not hashers:
        return {}
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            for h in hashers.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashers.items()}


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(HEAD_BYTES)


def _verify(url: str, path: Path, *, size: int | None, sha256: str | None, md5: str | None,
            expect: str | None) -> dict[str, str]:
    """Raise DownloadError if ``path`` is not the expected file; returns its sha256 (and md5 if asked)."""
    looks_like = sniff(_read_head(path), expect)
    if looks_like is not None:
        raise DownloadError(url, "content", _EXPECT_WORDS.get(expect, "the data file"), looks_like)
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise DownloadError(url, "size", f"{size} bytes", f"{actual_size} bytes")
    digests = _hash_file(path, ["sha256"] + (["md5"] if md5 else []))
    if sha256 is not None and digests["sha256"] != sha256.lower():
        raise DownloadError(url, "sha256", sha256.lower(), digests["sha256"])
    if md5 is not None and digests["md5"] != md5.lower():
        raise DownloadError(url, "md5", md5.lower(), digests["md5"])
    return digests


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _transfer(url: str, part: Path, *, size: int | None, expect: str | None, timeout: float,
              progress: bool) -> None:
    """One attempt: append to ``part`` from its current length. Raises _Transient if the transfer broke off."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        log.warning("%s: %s is longer than the expected %d bytes; starting afresh", url, part, size)
        _remove(part)
        offset = 0
    if size is not None and offset == size:
        return  # an earlier run got every byte; verification decides whether they are right
    with _open_source(url, offset, timeout) as (stream, start, total):
        if start == 0 and offset:
            log.warning("%s ignored the Range request: restarting from byte 0", url)
        elif start != offset:
            raise _Transient(f"asked for bytes from {offset}, server sent from {start}")
        if total is not None and size is not None and total != size:
            # Read the head first: a server answering an error page should be reported as such.
            head = stream.read(HEAD_BYTES) if start == 0 else b""
            looks_like = sniff(head, expect) if start == 0 else None
            if looks_like is not None:
                raise DownloadError(url, "content", _EXPECT_WORDS.get(expect, "the data file"), looks_like)
            raise DownloadError(url, "size", f"{size} bytes", f"a server announcing {total} bytes")
        written = start
        show = progress and (total or size or 0) >= PROGRESS_MIN_BYTES
        with open(part, "r+b" if part.exists() else "wb") as out, \
                tqdm(total=total or size, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=Path(urllib.parse.urlparse(url).path).name or url, disable=not show, leave=False) as bar:
            out.seek(start)
            out.truncate()
            try:
                while chunk := stream.read(CHUNK_BYTES):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
                out.flush()
                raise _Transient(f"{type(err).__name__} after {written} bytes") from None
            out.flush()
            os.fsync(out.fileno())
        if total is not None and written < total:
            raise _Transient(f"transfer ended after {written} of {total} bytes")


def download(url: str, dest: str | Path, *, size: int | None = None, sha256: str | None = None,
             md5: str | None = None, expect: str | None = None, retries: int = 4, backoff: float = 2.0,
             timeout: float = 60.0, progress: bool = True, checksum_lock: str | Path | None = None,
             checksum_key: str | None = None) -> Path:
    """Download ``url`` (http(s), ``file://`` or a local path) to ``dest``, verified and atomic.

    ``size``/``sha256``/``md5`` are checked before ``dest`` appears; ``expect`` (one of :data:`EXPECT_KINDS`)
    sniffs the first bytes so an HTML error page is never taken for an archive. With ``checksum_lock`` and no
    ``sha256``, the sha256 recorded under ``checksum_key`` (default: the file name of ``dest``) is enforced, or
    recorded if this is the first download. Up to ``retries`` retries per failure with exponential backoff
    (``backoff`` seconds, doubling; attempts that made progress reset the count). An existing ``dest`` that
    verifies is kept as it is. Returns ``dest``.

    Raises DownloadError (an InputError) with one line naming the URL and what was wrong. A ``.part`` that failed
    verification is removed; one left by connection problems is kept, so the next call resumes it.
    """
    dest = Path(dest)
    if expect is not None and expect not in EXPECT_KINDS:
        raise ValueError(f"expect must be one of {EXPECT_KINDS}, not {expect!r}")
    if sha256 is not None and not _is_hex(sha256.lower(), 64):
        raise InputError(url, "sha256", f"64 hexadecimal digits, not {sha256!r}")
    if md5 is not None and not _is_hex(md5.lower(), 32):
        raise InputError(url, "md5", f"32 hexadecimal digits, not {md5!r}")
    if dest.is_dir():
        raise InputError(dest, "dest", "a file path, not a directory")
    local = _local_path(url)
    if local is not None and local.exists() and dest.exists() and local.resolve() == dest.resolve():
        raise InputError(dest, "dest", "a path other than the source file itself")

    key = checksum_key or dest.name
    recording = False
    if checksum_lock is not None and sha256 is None:
        entry = recorded_checksum(checksum_lock, key)
        if entry is None:
            recording = True
        else:
            sha256 = entry["sha256"]
            size = size if size is not None else entry.get("size")

    if dest.exists():
        if sha256 is None and md5 is None and size is None and not recording:
            log.info("%s exists and there is nothing to verify it against: keeping it", dest)
            return dest
        try:
            digests = _verify(url, dest, size=size, sha256=sha256, md5=md5, expect=expect)
        except DownloadError as err:
            log.warning("%s exists but does not verify (%s): downloading again", dest, err)
        else:
            if recording:
                record_checksum(checksum_lock, key, digests["sha256"], dest.stat().st_size)
            return dest

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = 0
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            _transfer(url, part, size=size, expect=expect, timeout=timeout, progress=progress)
            break
        except _Transient as err:
            after = part.stat().st_size if part.exists() else 0
            failures = 0 if after > before else failures + 1  # progress made: this was not a dead end
            if failures > retries:
                kept = (f"{after} bytes kept in {part.name}, run again to resume" if after
                        else "nothing received")
                raise DownloadError(url, "transfer", "a complete transfer",
                                    f"{err} ({failures} failed attempts in a row; {kept})") from None
            wait = min(backoff * 2 ** max(failures - 1, 0), MAX_BACKOFF_S)
            log.warning("%s: %s; retrying in %.1f s", url, err, wait)
            time.sleep(wait)
        except DownloadError:
            _remove(part)  # whatever came was wrong (404, HTML, wrong size): never resume it
            raise
        except KeyboardInterrupt:
            raise  # keep the .part: it is a prefix of the file and the next run resumes it

    try:
        digests = _verify(url, part, size=size, sha256=sha256, md5=md5, expect=expect)
    except DownloadError:
        _remove(part)  # a .part that failed verification must never be resumed
        raise
    if recording:
        record_checksum(checksum_lock, key, digests["sha256"], part.stat().st_size)
        log.info("recorded sha256 %s of %s in %s", digests["sha256"], key, checksum_lock)
    os.replace(part, dest)
    log.info("downloaded and verified %s (%d bytes, sha256 %s)", dest, dest.stat().st_size, digests["sha256"])
    return dest


# ---------------------------------------------------------------------------------------------- extraction


def _safe_member_path(archive: Path, name: str) -> PurePosixPath:
    """The relative path a member may be written to; ArchiveError for absolute paths, '..' and drive letters."""
    normal = name.replace("\\", "/")
    path = PurePosixPath(normal)
    if (not normal or path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0])):
        raise ArchiveError(archive, f"member {name!r}", "a relative path that stays inside the archive's folder")
    return path


def _selected(name: str, patterns: list[str] | None, used: set[str]) -> bool:
    if patterns is None:
        return True
    parts = name.replace("\\", "/").rstrip("/").split("/")
    # The member itself and every folder above it: a pattern naming a folder selects everything inside.
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    hit = False
    for pattern in patterns:
        p = pattern.rstrip("/")
        if any(c == p or fnmatch.fnmatchcase(c, p) for c in candidates):
            used.add(pattern)
            hit = True
    return hit


def _archive_kind(path: Path) -> str:
    head = _read_head(path)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b") or head[257:262] == b"ustar" or head.startswith((b"BZh", b"\xfd7zXZ")):
        return "tar"
    raise ArchiveError(path, "format", "a zip, tar, tar.gz, tar.bz2 or tar.xz archive")


def _extract_zip(archive: Path, into: Path, members: list[str] | None, used: set[str]) -> list[Path]:
    written = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # check every member first: a bad archive writes nothing
            rel = _safe_member_path(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(archive, f"member {info.filename!r}", "a regular file or folder, not a link")
        for info in infos:
            if not _selected(info.filename, members, used):
                continue
            rel = _safe_member_path(archive, info.filename)
            target = into.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK_BYTES)
            written.append(target)
    return written


def _extract_tar(archive: Path, into: Path, members: list[str] | None, used: set[str]) -> list[Path]:
    written = []
    with tarfile.open(archive, "r:*") as tf:
        chosen = []
        for member in tf.getmembers():
            _safe_member_path(archive, member.name)
            if not (member.isfile() or member.isdir()):
                raise ArchiveError(archive, f"member {member.name!r}", "a regular file or folder, not a link or "
                                   "device")
            if _selected(member.name, members, used):
                chosen.append(member)
        # The "data" filter refuses absolute paths, '..', links and special files a second time, independently.
        tf.extractall(into, members=chosen, filter="data")
        written = [into / m.name for m in chosen if m.isfile()]
    return written


def extract(archive: str | Path, dest_dir: str | Path, members: Iterable[str] | None = None, *,
            nested: bool = False) -> Path:
    """Extract a zip, tar or tar.gz ``archive`` into ``dest_dir`` (created if needed; existing content kept).

    ``members``: names, folder prefixes or shell patterns (``fnmatch``) of the members to extract; every pattern
    must match something. With ``nested``, an extracted member that is itself a ``.zip`` is unpacked where it lies
    and removed (COCO's panoptic_annotations_trainval2017.zip holds annotations/panoptic_val2017.zip).

    Safe: members with absolute paths, ``..``, links or device files are refused (ArchiveError) before anything
    is written. Atomic: everything is unpacked into a temporary folder beside ``dest_dir`` first; each top-level
    entry then appears with one rename (folders already present are merged entry by entry), so no half-written
    file is ever visible under ``dest_dir``. Returns ``dest_dir``.
    """
    archive, dest_dir = Path(archive), Path(dest_dir).resolve()
    if not archive.is_file():
        raise ArchiveError(archive, "archive", "an existing file")
    patterns = list(members) if members is not None else None
    dest_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extract-", dir=dest_dir.parent))
    try:
        used: set[str] = set()
        _extract_into(archive, staging, patterns, used, nested)
        if patterns is not None and set(patterns) - used:
            raise ArchiveError(archive, "members", f"members matching {sorted(set(patterns) - used)}")
        _merge(staging, dest_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("extracted %s into %s", archive, dest_dir)
    return dest_dir


def _extract_into(archive: Path, into: Path, patterns: list[str] | None, used: set[str], nested: bool) -> None:
    kind = _archive_kind(archive)
    written = (_extract_zip if kind == "zip" else _extract_tar)(archive, into, patterns, used)
    if not nested:
        return
    for path in written:
        if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            _extract_into(path, path.parent, None, set(), nested)
            path.unlink()


def _merge(source: Path, target: Path) -> None:
    """Move every entry of ``source`` into ``target``: absent entries with one rename each, folders present on
    both sides merged recursively, files replaced."""
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if destination.is_dir() and entry.is_dir() and not destination.is_symlink():
            _merge(entry, destination)
        elif destination.is_dir() and not destination.is_symlink():
            raise ArchiveError(destination, "existing folder", f"a file, to be replaced by {entry.name}")
        else:
            os.replace(entry, destination)


__all__ = ["ArchiveError", "DownloadError", "EXPECT_KINDS", "download", "extract", "record_checksum",
           "recorded_checksum", "sniff"]
