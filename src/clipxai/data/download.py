"""Verified, atomic, resumable downloads and safe archive extraction.

Every download rule of the workflow goes through :func:`download`:

- bytes are written to ``<dest>.part``; the file appears at ``dest`` only after its content type, size and
  checksums verified, so an interrupted or failed download never leaves a file that looks complete;
- a ``.part`` left by an interrupted run is resumed with an HTTP ``Range`` request (a server that ignores
  ``Range`` answers 200 and the download restarts from byte 0);
- connection errors, truncated transfers and 5xx answers are retried with exponential backoff, within a cap on
  the number of attempts and on the total time (a server that drops every connection after a few KB makes
  "progress" each time and would otherwise be retried for ever);
- a failure to write (disk full, quota, permissions) is not a network problem: it is never retried, the ``.part``
  is removed (it would keep the disk full) and the one line says what the system said and which file;
- one download of a destination runs at a time: ``<dest>.lock`` is held (``flock``) from the first check of
  ``dest`` to the rename, and a second process waits for it (bounded) and then finds the file verified;
- a 404, an HTML page where an archive was expected, a wrong size or checksum end with one
  :class:`DownloadError` line naming the URL and what was wrong, and the bad ``.part`` is removed (a ``.part`` that
  failed verification must never be resumed);
- ``file://`` URLs and plain local paths (a lab mirror, a local copy) go through the same verification;
- sources whose checksum is not published are pinned by their first download in a lock file
  (:func:`recorded_checksum` / :func:`record_checksum`); later downloads must match it.

:func:`extract` unpacks zip (including zips inside the zip), tar and tar.gz archives into a directory, refusing
members that would land outside it, links, and paths that are both a file and a folder; it caps the bytes
written (default: :data:`EXTRACT_RATIO` times the archive's size, at least :data:`EXTRACT_FLOOR_BYTES`) and checks
the free space first, so a zip bomb ends in one line, not a full disk. It publishes each top-level entry with a
rename; any failure leaves nothing extracted.

Standard library only (urllib); nothing touches the network at import time.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import http.client
import errno
import logging
import lzma
import os
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
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
# Caps on one download: attempts in all (each reconnection is one) and wall-clock seconds, waiting included.
# Generous for a flaky mirror (COCO's 800 MB over a slow link), finite for a server that never finishes.
MAX_ATTEMPTS = 30
MAX_TIME_S = 4 * 3600.0
LOCK_POLL_S = 0.5
# Extraction cap when none is given: this many times the archive's size, and never below the floor. Real data
# archives hold images (ratio about 1) or JSON (a few); a zip bomb's ratio is in the hundreds or more.
EXTRACT_RATIO = 10
EXTRACT_FLOOR_BYTES = 256 << 20
# Room left on the disk after an extraction (logs, the next job's outputs).
FREE_SPACE_MARGIN_BYTES = 64 << 20
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
        raw = lock_path.read_bytes()
    except OSError as err:
        raise InputError(lock_path, "checksum lock", f"a readable file ({err.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(lock_path, "encoding", f"UTF-8 text (a YAML mapping of recorded checksums); byte "
                         f"{err.start} is {raw[err.start:err.start + 1]!r}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        detail = " ".join(str(err).split())  # PyYAML's message spans lines
        raise InputError(lock_path, "yaml", f"a YAML mapping of recorded checksums ({detail})") from None
    if not isinstance(data, dict):
        raise InputError(lock_path, "top level", "a mapping from source name to {sha256, size}")
    return data


def _check_entry(lock_path: Path, key: str, entry) -> dict:
    if not isinstance(entry, dict) or not _is_hex(entry.get("sha256"), 64):
        raise InputError(lock_path, key, "a mapping with a 64-hex-digit sha256")
    return entry


def recorded_checksum(lock_path: str | Path, key: str) -> dict | None:
    """The ``{"sha256": ..., "size": ...}`` recorded for ``key`` in the lock file, or None if not recorded yet."""
    lock_path = Path(lock_path)
    entry = _read_lock(lock_path).get(key)
    return None if entry is None else _check_entry(lock_path, key, entry)


def record_checksum(lock_path: str | Path, key: str, sha256: str, size: int) -> None:
    """Record the checksum of ``key``'s first download. An existing, different record is an error (never
    silently replaced: delete the line by hand if the upstream file really changed)."""
    lock_path = Path(lock_path)
    with _locked(lock_path):
        data = _read_lock(lock_path)
        old = data.get(key)
        if old is not None and _check_entry(lock_path, key, old).get("sha256") != sha256:
            raise InputError(lock_path, key, f"sha256 {old.get('sha256')} (recorded earlier), not {sha256}")
        data[key] = {"sha256": sha256, "size": int(size)}
        header = ("# Checksums recorded at the first download of sources that publish none "
                  "(clipxai download --lock).\n# Later downloads must match. Delete an entry only if upstream "
                  "really changed the file.\n")
        try:
            write_text(lock_path, header + yaml.safe_dump(data, sort_keys=True, default_flow_style=False))
        except OSError as err:
            raise InputError(lock_path, "write", f"room to record the checksum of {key} ({err.strerror})") from None


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


class _WriteFailed(Exception):
    """Writing the ``.part`` failed (disk full, quota, I/O error): not the network's fault, never retried."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


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
        if local.is_dir():
            raise DownloadError(url, "local file", "a file to download", "a directory")
        if not local.is_file():
            raise DownloadError(url, "local file", "an existing regular file",
                                "something that is not a regular file" if local.exists() else "nothing there")
        try:
            fh = open(local, "rb")
        except OSError as err:
            raise DownloadError(url, "local file", "a readable file", err.strerror or str(err)) from None
        total = os.fstat(fh.fileno()).st_size
        with fh:
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


def _open_part(path: Path, mode: str) -> BinaryIO:
    """The ``.part`` file, opened for writing (a seam: tests put a writer that fills up in its place)."""
    return open(path, mode)


def _transfer(url: str, part: Path, *, size: int | None, expect: str | None, timeout: float,
              progress: bool, deadline: float = float("inf")) -> None:
    """One attempt: append to ``part`` from its current length. Raises _Transient if the transfer broke off
    (or ``deadline``, a ``time.monotonic()`` value, passed), _WriteFailed if ``part`` could not be written."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        log.warning("%s: %s is longer than the expected %d bytes; starting afresh", url, part, size)
        _remove(part)
        offset = 0
    if size is not None and offset == size:
        return  # an earlier run got every byte; verification decides whether they are right
    timeout = max(min(timeout, deadline - time.monotonic()), 0.1)
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
        try:
            # Every OSError in this block comes from the file (reading errors become _Transient inside): a full
            # disk often shows only at flush, fsync or close, so those are inside too.
            with _open_part(part, "r+b" if part.exists() else "wb") as out, \
                    tqdm(total=total or size, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                         desc=Path(urllib.parse.urlparse(url).path).name or url, disable=not show,
                         leave=False) as bar:
                out.seek(start)
                out.truncate()
                # read1 returns what has arrived (read would wait for a whole chunk): a server trickling bytes
                # is then stopped at the time limit, not after the chunk.
                read = getattr(stream, "read1", stream.read)
                while True:
                    if time.monotonic() > deadline:
                        out.flush()
                        raise _Transient(f"time limit reached after {written} bytes")
                    try:
                        chunk = read(CHUNK_BYTES)
                    except (OSError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
                        out.flush()
                        raise _Transient(f"{type(err).__name__} after {written} bytes") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except OSError as err:
            raise _WriteFailed(err) from None
        if total is not None and written < total:
            raise _Transient(f"transfer ended after {written} of {total} bytes")


@contextlib.contextmanager
def destination_lock(dest: str | Path, wait: float = MAX_TIME_S) -> Iterator[Path]:
    """Hold ``<dest>.lock`` exclusively while ``dest`` is being fetched; another holder is waited for at most
    ``wait`` seconds, then InputError (one line).

    The lock is ``flock`` on the file (on Linux NFS clients it becomes a POSIX lock the server arbitrates). The file
    is removed on release, before unlocking; whoever then gets the lock checks that the file they locked is still
    the one at the path, so a removed lock file never lets two processes in at once.
    """
    dest = Path(dest)
    lock_path = dest.with_name(dest.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise InputError(lock_path, "lock", f"a file this process can create ({err.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            left = deadline - time.monotonic()
            if left <= 0:
                raise InputError(dest, "lock", f"no other download of this file running; {holder} has held "
                                 f"{lock_path.name} for over {wait:g} s (clipxai download --lock-wait sets how "
                                 "long to wait)") from None
            if not announced:
                log.info("%s is being downloaded by %s: waiting up to %g s for it", dest, holder, wait)
                announced = True
            time.sleep(min(LOCK_POLL_S, left))
            continue
        except OSError as err:  # ENOLCK: a network filesystem without a lock service
            os.close(fd)
            raise InputError(lock_path, "lock", f"a filesystem with file locks ({err.strerror})") from None
        try:
            current = os.stat(lock_path)
            ours = os.fstat(fd)
            same = (current.st_dev, current.st_ino) == (ours.st_dev, ours.st_ino)
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed this file after we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield lock_path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(fd)


def check_target(url: str, dest: str | Path) -> None:
    """InputError (one line) when ``dest`` or a local ``url`` cannot be what a download reads and writes: checked
    before anything is created."""
    dest = Path(dest)
    if dest.is_dir():
        raise InputError(dest, "dest", "a file path, not a directory")
    local = _local_path(url)
    if local is not None and local.is_dir():
        raise DownloadError(url, "local file", f"a file to download, not a directory (name the file in it, e.g. "
                            f"{local / dest.name})")
    if local is not None and local.exists() and dest.exists() and local.resolve() == dest.resolve():
        raise InputError(dest, "dest", "a path other than the source file itself")


def download(url: str, dest: str | Path, *, size: int | None = None, sha256: str | None = None,
             md5: str | None = None, expect: str | None = None, retries: int = 4, backoff: float = 2.0,
             timeout: float = 60.0, progress: bool = True, checksum_lock: str | Path | None = None,
             checksum_key: str | None = None, max_attempts: int = MAX_ATTEMPTS, max_time: float = MAX_TIME_S,
             lock_wait: float | None = None, lock: bool = True) -> Path:
    """Download ``url`` (http(s), ``file://`` or a local path) to ``dest``, verified and atomic.

    ``size``/``sha256``/``md5`` are checked before ``dest`` appears; ``expect`` (one of :data:`EXPECT_KINDS`)
    sniffs the first bytes so an HTML error page is never taken for an archive. With ``checksum_lock`` and no
    ``sha256``, the sha256 recorded under ``checksum_key`` (default: the file name of ``dest``) is enforced, or
    recorded if this is the first download. Up to ``retries`` retries per failure with exponential backoff
    (``backoff`` seconds, doubling; attempts that made progress reset the count), and in all at most
    ``max_attempts`` attempts within ``max_time`` seconds. An existing ``dest`` that verifies is kept as it is.
    Returns ``dest``.

    With ``lock`` (the default) the whole call holds :func:`destination_lock`, waiting at most ``lock_wait``
    seconds (default ``max_time``) for another download of ``dest``; pass ``lock=False`` when the caller holds it.

    Raises DownloadError (an InputError) with one line naming the URL and what was wrong. A ``.part`` that failed
    verification or could not be written is removed; one left by connection problems is kept, so the next call
    resumes it.
    """
    dest = Path(dest)
    if expect is not None and expect not in EXPECT_KINDS:
        raise ValueError(f"expect must be one of {EXPECT_KINDS}, not {expect!r}")
    if sha256 is not None and not _is_hex(sha256.lower(), 64):
        raise InputError(url, "sha256", f"64 hexadecimal digits, not {sha256!r}")
    if md5 is not None and not _is_hex(md5.lower(), 32):
        raise InputError(url, "md5", f"32 hexadecimal digits, not {md5!r}")
    check_target(url, dest)
    if max_attempts < 1 or max_time <= 0:
        raise ValueError(f"max_attempts must be >= 1 and max_time > 0, not {max_attempts} and {max_time}")

    if not lock:
        return _download_unlocked(url, dest, size=size, sha256=sha256, md5=md5, expect=expect, retries=retries,
                                  backoff=backoff, timeout=timeout, progress=progress, checksum_lock=checksum_lock,
                                  checksum_key=checksum_key, max_attempts=max_attempts, max_time=max_time)
    with destination_lock(dest, max_time if lock_wait is None else lock_wait):
        return _download_unlocked(url, dest, size=size, sha256=sha256, md5=md5, expect=expect, retries=retries,
                                  backoff=backoff, timeout=timeout, progress=progress, checksum_lock=checksum_lock,
                                  checksum_key=checksum_key, max_attempts=max_attempts, max_time=max_time)


def _download_unlocked(url: str, dest: Path, *, size, sha256, md5, expect, retries, backoff, timeout, progress,
                       checksum_lock, checksum_key, max_attempts, max_time) -> Path:
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
    started = time.monotonic()
    deadline = started + max_time
    failures = attempts = 0
    while True:
        attempts += 1
        before = part.stat().st_size if part.exists() else 0
        try:
            _transfer(url, part, size=size, expect=expect, timeout=timeout, progress=progress, deadline=deadline)
            break
        except _Transient as err:
            after = part.stat().st_size if part.exists() else 0
            failures = 0 if after > before else failures + 1  # progress made: this was not a dead end
            wait = min(backoff * 2 ** max(failures - 1, 0), MAX_BACKOFF_S)
            if failures > retries:
                limit = f"{failures} failed attempts in a row without progress"
            elif attempts >= max_attempts:
                limit = f"{attempts} attempts, the limit"
            elif time.monotonic() + wait >= deadline:
                limit = f"{time.monotonic() - started:.0f} s, the time limit being {max_time:g} s"
            else:
                log.warning("%s: %s; attempt %d of at most %d, retrying in %.1f s", url, err, attempts,
                            max_attempts, wait)
                time.sleep(wait)
                continue
            kept = f"{after} bytes kept in {part.name}, run again to resume" if after else "nothing received"
            raise DownloadError(url, "transfer", "a complete transfer",
                                f"{err} (gave up after {limit}; {kept})") from None
        except _WriteFailed as failed:
            _remove(part)  # a full disk stays full while the .part is kept; the next run starts afresh
            raise _write_error(url, part, failed.error) from None
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
    try:
        os.replace(part, dest)
    except OSError as err:
        _remove(part)
        raise _write_error(url, dest, err) from None
    log.info("downloaded and verified %s (%d bytes, sha256 %s)", dest, dest.stat().st_size, digests["sha256"])
    return dest


def _write_error(url: str, path: Path, err: OSError) -> DownloadError:
    code = errno.errorcode.get(err.errno, "") if err.errno else ""
    reason = f"{err.strerror} ({code})" if err.strerror else f"{type(err).__name__}: {err}"
    return DownloadError(url, f"writing {path}", "the file written to disk",
                         f"{reason}; a write error, not retried; the partial file was removed")


# ---------------------------------------------------------------------------------------------- extraction


def _safe_member_path(archive: Path, name: str) -> PurePosixPath:
    """The relative path a member may be written to; ArchiveError for absolute paths, '..' and drive letters."""
    normal = name.replace("\\", "/")
    path = PurePosixPath(normal)
    if (not normal or path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0])):
        raise ArchiveError(archive, f"member {name!r}", "a relative path that stays inside the archive's folder")
    return path


def _check_layout(archive: Path, entries: Iterable[tuple[str, bool]]) -> None:
    """ArchiveError unless the ``(name, is_folder)`` members can all be written: no path is both a file and a
    folder (a file ``a`` and a member ``a/b``), no file is the archive's root folder itself."""
    files: dict[tuple[str, ...], str] = {}
    folders: dict[tuple[str, ...], str] = {}
    for name, is_folder in entries:
        parts = _safe_member_path(archive, name).parts
        if not parts:
            if is_folder:
                continue  # "./": the root folder, present anyway
            raise ArchiveError(archive, f"member {name!r}", "a file name, not the archive's root folder")
        for depth in range(1, len(parts)):
            folders.setdefault(parts[:depth], name)
        (folders if is_folder else files).setdefault(parts, name)
    clashes = sorted(set(files) & set(folders))
    if clashes:
        path = "/".join(clashes[0])
        raise ArchiveError(archive, f"member {files[clashes[0]]!r}", f"a path that is a file or a folder, not both "
                           f"({path!r} is a file and {folders[clashes[0]]!r} lies inside it)")


class _ExtractBudget:
    """The bytes an extraction may still write, and a check of the free space before each archive."""

    def __init__(self, archive: Path, limit: int, reason: str):
        self.archive, self.limit, self.reason, self.used = archive, limit, reason, 0

    def plan(self, archive: Path, declared: int, into: Path) -> None:
        """Refuse before writing when the members' declared sizes exceed the cap or the free space."""
        if self.used + declared > self.limit:
            raise ArchiveError(archive, "extracted size", f"at most {self.limit} bytes ({self.reason}), got "
                               f"members totalling {self.used + declared} bytes; nothing extracted")
        free = shutil.disk_usage(into).free
        if declared + FREE_SPACE_MARGIN_BYTES > free:
            raise ArchiveError(archive, "free space", f"{declared + FREE_SPACE_MARGIN_BYTES} bytes free beside "
                               f"the destination ({declared} to extract, {FREE_SPACE_MARGIN_BYTES} to spare), "
                               f"got {free}; nothing extracted")

    def spend(self, archive: Path, name: str, n: int) -> None:
        """Count bytes as they are written: a member whose real size exceeds its header stops at the cap."""
        self.used += n
        if self.used > self.limit:
            raise ArchiveError(archive, f"member {name!r}", f"at most {self.limit} bytes extracted in all "
                               f"({self.reason}), got more; nothing extracted")


def default_extract_limit(archive_size: int) -> int:
    """Bytes an archive of ``archive_size`` bytes may unpack to when no cap is given."""
    return max(EXTRACT_RATIO * archive_size, EXTRACT_FLOOR_BYTES)


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


def _extract_zip(archive: Path, into: Path, members: list[str] | None, used: set[str],
                 budget: _ExtractBudget) -> list[Path]:
    written = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # check every member first: a bad archive writes nothing
            _safe_member_path(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(archive, f"member {info.filename!r}", "a regular file or folder, not a link")
        chosen = [info for info in infos if _selected(info.filename, members, used)]
        _check_layout(archive, [(info.filename, info.is_dir()) for info in chosen])
        budget.plan(archive, sum(info.file_size for info in chosen if not info.is_dir()), into)
        for info in chosen:
            target = into.joinpath(*_safe_member_path(archive, info.filename).parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(CHUNK_BYTES):
                    budget.spend(archive, info.filename, len(chunk))
                    out.write(chunk)
            written.append(target)
    return written


def _extract_tar(archive: Path, into: Path, members: list[str] | None, used: set[str],
                 budget: _ExtractBudget) -> list[Path]:
    with tarfile.open(archive, "r:*") as tf:
        chosen = []
        for member in tf.getmembers():
            _safe_member_path(archive, member.name)
            if not (member.isfile() or member.isdir()):
                raise ArchiveError(archive, f"member {member.name!r}", "a regular file or folder, not a link or "
                                   "device")
            if _selected(member.name, members, used):
                chosen.append(member)
        _check_layout(archive, [(m.name, m.isdir()) for m in chosen])
        # A tar member's header size is exactly what tarfile writes: checking it up front is the whole cap.
        declared = sum(m.size for m in chosen if m.isfile())
        budget.plan(archive, declared, into)
        # The "data" filter refuses absolute paths, '..', links and special files a second time, independently.
        tf.extractall(into, members=chosen, filter="data")
        budget.spend(archive, chosen[-1].name if chosen else "", declared)
        written = [into / m.name for m in chosen if m.isfile()]
    return written


# What broken or unsupported archives raise from zipfile, tarfile and the decompressors.
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError,
            NotImplementedError, RuntimeError, UnicodeDecodeError)


def extract(archive: str | Path, dest_dir: str | Path, members: Iterable[str] | None = None, *,
            nested: bool = False, max_bytes: int | None = None) -> Path:
    """Extract a zip, tar or tar.gz ``archive`` into ``dest_dir`` (created if needed; existing content kept).

    ``members``: names, folder prefixes or shell patterns (``fnmatch``) of the members to extract; every pattern
    must match something. With ``nested``, an extracted member that is itself a ``.zip`` is unpacked where it lies
    and removed (COCO's panoptic_annotations_trainval2017.zip holds annotations/panoptic_val2017.zip).
    ``max_bytes`` caps what is written in all, nested archives included (default
    :func:`default_extract_limit` of the archive's size); the free space is checked before each archive.

    Safe: members with absolute paths, ``..``, links or device files, and paths that are both a file and a
    folder, are refused (ArchiveError) before anything is written. Atomic: everything is unpacked into a
    temporary folder beside ``dest_dir`` first; each top-level entry then appears with one rename (folders already
    present are merged entry by entry, after checking that nothing clashes), so no half-written file is ever
    visible under ``dest_dir``. Every failure is one ArchiveError line and leaves ``dest_dir`` as it was.
    Returns ``dest_dir``.
    """
    archive, dest_dir = Path(archive), Path(dest_dir).resolve()
    if not archive.is_file():
        raise ArchiveError(archive, "archive", "an existing file")
    patterns = list(members) if members is not None else None
    if max_bytes is None:
        limit, reason = default_extract_limit(archive.stat().st_size), (
            f"{EXTRACT_RATIO} times the archive's size, at least {EXTRACT_FLOOR_BYTES}; --max-extract-bytes")
    else:
        limit, reason = int(max_bytes), "the cap given"
    budget = _ExtractBudget(archive, limit, reason)
    if dest_dir.exists() and not dest_dir.is_dir():
        raise ArchiveError(dest_dir, "extract to", "a folder, not a file")
    try:
        dest_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extract-", dir=dest_dir.parent))
    except OSError as err:
        raise ArchiveError(dest_dir, "extract to", f"a folder this process can write ({err.strerror})") from None
    try:
        used: set[str] = set()
        try:
            _extract_into(archive, staging, patterns, used, nested, budget)
        except ArchiveError:
            raise
        except _CORRUPT as err:
            raise ArchiveError(archive, "content", f"a readable zip or tar archive ({type(err).__name__}: "
                               f"{_one_line(err)}); nothing extracted") from None
        except OSError as err:
            if err.errno is None:  # gzip/bz2 report corrupt data as an OSError without an errno
                raise ArchiveError(archive, "content", f"a readable zip or tar archive ({_one_line(err)}); "
                                   "nothing extracted") from None
            code = errno.errorcode.get(err.errno, str(err.errno))
            raise ArchiveError(archive, f"extracting into {dest_dir}", f"the members written to disk, got "
                               f"{err.strerror} ({code}); nothing extracted") from None
        if patterns is not None and set(patterns) - used:
            raise ArchiveError(archive, "members", f"members matching {sorted(set(patterns) - used)}")
        dest_dir.mkdir(exist_ok=True)
        _check_merge(staging, dest_dir)
        _merge(staging, dest_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("extracted %s into %s (%d bytes)", archive, dest_dir, budget.used)
    return dest_dir


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _extract_into(archive: Path, into: Path, patterns: list[str] | None, used: set[str], nested: bool,
                  budget: _ExtractBudget) -> None:
    kind = _archive_kind(archive)
    written = (_extract_zip if kind == "zip" else _extract_tar)(archive, into, patterns, used, budget)
    if not nested:
        return
    for path in written:
        if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            _extract_into(path, path.parent, None, set(), nested, budget)
            path.unlink()


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _check_merge(source: Path, target: Path) -> None:
    """ArchiveError if moving ``source``'s entries into ``target`` would put a file over a folder or a folder over
    a file: checked for the whole tree before the first move, so a clash leaves ``target`` untouched."""
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if not os.path.lexists(destination):
            continue
        if _real_dir(entry) and _real_dir(destination):
            _check_merge(entry, destination)
        elif _real_dir(destination):
            raise ArchiveError(destination, "existing folder", f"a file, to be replaced by {entry.name} from the "
                               "archive; nothing extracted")
        elif _real_dir(entry):
            raise ArchiveError(destination, "existing file", f"a folder, to receive {entry.name}/ from the "
                               "archive; nothing extracted")


def _merge(source: Path, target: Path) -> None:
    """Move every entry of ``source`` into ``target``: absent entries with one rename each, folders present on
    both sides merged recursively, files replaced (:func:`_check_merge` first)."""
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if _real_dir(destination) and _real_dir(entry):
            _merge(entry, destination)
        else:
            os.replace(entry, destination)


__all__ = ["ArchiveError", "DownloadError", "EXPECT_KINDS", "check_target", "default_extract_limit",
           "destination_lock", "download", "extract", "record_checksum", "recorded_checksum", "sniff"]
