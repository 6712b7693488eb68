"""Downloads and archives under stress: a full disk, a server that never finishes, two downloads of one file at
once, zip bombs and malformed archives, a damaged checksum lock. Each case ends in one line and leaves nothing
half-written."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections import namedtuple
from pathlib import Path

import pytest

from clipxai import cli
from clipxai.data import download as dl
from clipxai.data.download import ArchiveError, DownloadError, destination_lock, download, extract
from clipxai.errors import InputError
from clipxai.seeding import rng
from httpfixture import FixtureServer, Route

FAST = dict(retries=3, backoff=0.01, timeout=5.0, progress=False)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server():
    srv = FixtureServer(hard_timeout=60.0).start()
    yield srv
    srv.stop()


@pytest.fixture
def verbs(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["download", "fetch_weights"])


def noise(n: int) -> bytes:
    return rng(0, "download-limits").integers(0, 256, size=n, dtype="uint8").tobytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_bytes(files: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def leftovers(folder: Path) -> list[str]:
    """Every entry under ``folder`` (recursively), relative."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def zip_source_args(dest: Path, url: str, payload: bytes) -> list[str]:
    """`clipxai download` of a catalogued zip from ``url``, with the payload's own checksum."""
    return ["download", "coco_val2017_images", "--dest", str(dest), "--url", url, "--sha256", sha256(payload),
            "--size", str(len(payload)), "--no-progress"]


# ---------------------------------------------------------------------------------------------- disk full


class FillingFile:
    """A .part writer on a disk that fills up after ``room`` bytes (ENOSPC, as write(2) reports it)."""

    def __init__(self, path, mode, room: int):
        self._fh = open(path, mode)
        self._room = room

    def write(self, data: bytes) -> int:
        if self._fh.tell() + len(data) > self._room:
            self._fh.write(data[:max(self._room - self._fh.tell(), 0)])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def test_disk_full_is_a_write_error_not_retried(server, verbs, tmp_path, monkeypatch, capsys):
    payload = b"PK\x03\x04" + noise(3 * dl.CHUNK_BYTES)
    server.routes["/val2017.zip"] = Route(payload)
    monkeypatch.setattr(dl, "_open_part", lambda path, mode: FillingFile(path, mode, room=dl.CHUNK_BYTES + 10))
    dest = tmp_path / "downloads" / "val2017.zip"
    code = cli.main(zip_source_args(dest, server.url("/val2017.zip"), payload))
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert "No space left on device (ENOSPC)" in line and str(dest) + ".part" in line
    assert "not retried" in line and server.url("/val2017.zip") in line
    assert len(server.requests_for("/val2017.zip")) == 1  # no retry, no "run again to resume"
    assert leftovers(tmp_path / "downloads") == []  # no file, no .part holding the disk full, no .lock


def _tmpfs_available(probe: Path) -> bool:
    """Whether this machine lets an unprivileged user mount a tmpfs in a user namespace (Linux)."""
    if shutil.which("unshare") is None:
        return False
    probe.mkdir()
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                             f"mount -t tmpfs -o size=64k tmpfs {probe}"], capture_output=True, timeout=20)
    return result.returncode == 0


def test_disk_full_on_a_real_small_filesystem(tmp_path):
    """The same, through the kernel: a 256 KiB tmpfs and a 1 MiB local mirror file, `clipxai download` run in a
    user namespace that holds the mount."""
    if not _tmpfs_available(tmp_path / "probe"):
        pytest.skip("no user-namespace tmpfs here; the patched-writer test covers the code path")
    payload = b"PK\x03\x04" + noise((1 << 20) - 4)
    mirror = tmp_path / "mirror" / "val2017.zip"
    mirror.parent.mkdir()
    mirror.write_bytes(payload)
    disk = tmp_path / "disk"
    disk.mkdir()
    dest = disk / "downloads" / "val2017.zip"
    clipxai = " ".join([sys.executable, "-m", "clipxai", "--log-level", "ERROR"] +
                       zip_source_args(dest, str(mirror), payload))
    script = (f"mount -t tmpfs -o size=256k tmpfs {disk} && {{ {clipxai}; rc=$?; "
              f"echo LEFT: $(cd {disk} && find . -mindepth 1 | sort); exit $rc; }}")
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert "No space left on device" in line and f"writing {dest}.part" in line
    assert "LEFT: ./downloads\n" in result.stdout  # the folder, nothing in it


# ---------------------------------------------------------------------------------------------- bounded retries


def test_server_dropping_every_connection_gives_up_at_the_attempt_cap(server, tmp_path):
    payload = b"PK\x03\x04" + noise(400_000)
    server.routes["/a.zip"] = Route(payload, cut_after=4096, cut_times=10**9)  # every attempt: 4 KB, then cut
    dest = tmp_path / "a.zip"
    with pytest.raises(DownloadError) as info:
        download(server.url("/a.zip"), dest, sha256=sha256(payload), expect="zip", max_attempts=6, **FAST)
    message = str(info.value)
    assert "\n" not in message and message.startswith(server.url("/a.zip") + ": transfer:")
    assert "gave up after 6 attempts, the limit" in message
    assert len(server.requests_for("/a.zip")) == 6  # each attempt made progress, and still it stopped
    part = dest.with_name("a.zip.part")
    assert not dest.exists() and part.stat().st_size == 6 * 4096  # kept: a later run resumes it
    assert f"{6 * 4096} bytes kept in a.zip.part" in message


def test_time_cap_stops_a_trickling_server(server, tmp_path):
    payload = b"PK\x03\x04" + noise(20_000)
    server.routes["/slow.zip"] = Route(payload, trickle_bytes=100, trickle_s=0.05)  # 10 s for the whole file
    dest = tmp_path / "slow.zip"
    started = time.monotonic()
    with pytest.raises(DownloadError, match="time limit") as info:
        download(server.url("/slow.zip"), dest, sha256=sha256(payload), expect="zip", max_time=0.6, **FAST)
    assert time.monotonic() - started < 4.0
    assert len(server.requests_for("/slow.zip")) == 1 and "\n" not in str(info.value)
    assert not dest.exists()


def test_cli_attempt_cap_flag(server, verbs, tmp_path, capsys):
    payload = b"PK\x03\x04" + noise(100_000)
    server.routes["/val2017.zip"] = Route(payload, cut_after=2048, cut_times=10**9)
    dest = tmp_path / "val2017.zip"
    code = cli.main(zip_source_args(dest, server.url("/val2017.zip"), payload) + ["--max-attempts", "3",
                                                                                    "--backoff", "0.01"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and server.url("/val2017.zip") in line and "gave up after 3 attempts" in line
    assert len(server.requests_for("/val2017.zip")) == 3
    assert not dest.exists() and not dest.with_name("val2017.zip.lock").exists()


# ---------------------------------------------------------------------------------------------- one at a time


def _wait_for_request(server: FixtureServer, path: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.requests_for(path):
        assert time.monotonic() < deadline, "the first download never reached the server"
        time.sleep(0.01)


def test_two_downloads_of_one_destination_at_once(server, tmp_path):
    payload = b"PK\x03\x04" + noise(60_000)
    server.routes["/a.zip"] = Route(payload, trickle_bytes=6_000, trickle_s=0.05)  # about half a second
    dest = tmp_path / "a.zip"
    errors: list[BaseException] = []

    def fetch():
        try:
            download(server.url("/a.zip"), dest, sha256=sha256(payload), expect="zip", **FAST)
        except BaseException as err:  # noqa: BLE001 (reported by the assertion below)
            errors.append(err)

    first = threading.Thread(target=fetch)
    first.start()
    _wait_for_request(server, "/a.zip")
    second = threading.Thread(target=fetch)  # the same file, while the first is still transferring
    second.start()
    first.join(20)
    second.join(20)
    assert errors == []
    assert dest.read_bytes() == payload
    assert len(server.requests_for("/a.zip")) == 1  # the second waited, then found the file verified
    assert leftovers(tmp_path) == ["a.zip"]


def test_second_download_process_gives_up_waiting_in_one_line(server, tmp_path):
    payload = b"PK\x03\x04" + noise(60_000)
    server.routes["/val2017.zip"] = Route(payload, trickle_bytes=3_000, trickle_s=0.1)  # about two seconds
    dest = tmp_path / "val2017.zip"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "clipxai", "--log-level", "ERROR"] + zip_source_args(
        dest, server.url("/val2017.zip"), payload)
    first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_request(server, "/val2017.zip", timeout=30)
        second = subprocess.run(command + ["--lock-wait", "0.3"], env=env, capture_output=True, text=True,
                                timeout=60)
        _, first_err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 0, first_err
    assert second.returncode == 2
    line = one_error_line(second.stderr)
    assert f"{dest}: lock: expected no other download of this file running" in line
    assert f"process {first.pid}" in line and "--lock-wait" in line
    assert dest.read_bytes() == payload and leftovers(tmp_path) == ["val2017.zip"]


def test_destination_lock_admits_one_holder_at_a_time(tmp_path, monkeypatch):
    """Holders remove the lock file on release; whoever was waiting on the removed file must not get in too."""
    monkeypatch.setattr(dl, "LOCK_POLL_S", 0.002)
    dest = tmp_path / "x.zip"
    inside, overlaps, done = [0], [], []

    def worker():
        for _ in range(5):
            with destination_lock(dest, wait=30):
                inside[0] += 1
                if inside[0] != 1:
                    overlaps.append(inside[0])
                time.sleep(0.003)
                inside[0] -= 1
        done.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) == 4 and overlaps == []
    assert not dest.with_name("x.zip.lock").exists()


def test_waiter_on_a_removed_lock_file_does_not_get_in(tmp_path, monkeypatch):
    """The race the inode check closes, forced: a waiter opens the lock file, the holder releases (removing it),
    a newcomer locks the new file, and only then the waiter's flock on the old, removed file succeeds."""
    import fcntl

    monkeypatch.setattr(dl, "LOCK_POLL_S", 0.01)
    dest = tmp_path / "x.zip"
    opened, go, entered = threading.Event(), threading.Event(), threading.Event()
    real_flock = fcntl.flock
    first_try = [True]

    def slow_flock(fd, op):
        if threading.current_thread().name == "waiter" and first_try[0]:
            first_try[0] = False
            opened.set()
            go.wait(10)
        return real_flock(fd, op)

    holder = destination_lock(dest, wait=5)
    holder.__enter__()
    monkeypatch.setattr(fcntl, "flock", slow_flock)

    def waiter():
        with destination_lock(dest, wait=10):
            entered.set()

    thread = threading.Thread(target=waiter, name="waiter")
    thread.start()
    assert opened.wait(10)
    holder.__exit__(None, None, None)  # removes the file the waiter holds open
    newcomer = destination_lock(dest, wait=5)
    newcomer.__enter__()
    go.set()
    assert not entered.wait(0.3)  # the newcomer holds the lock: the waiter must still be waiting
    newcomer.__exit__(None, None, None)
    assert entered.wait(10)
    thread.join(10)
    assert not dest.with_name("x.zip.lock").exists()


# ---------------------------------------------------------------------------------------------- archives


def test_zip_bomb_refused_by_the_cap_before_writing(tmp_path):
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(zip_bytes({"zeros.bin": bytes(8 << 20)}))  # 8 MiB of zeros, ~8 KiB compressed
    assert archive.stat().st_size < 100_000
    out = tmp_path / "out"
    with pytest.raises(ArchiveError) as info:
        extract(archive, out, max_bytes=1 << 20)
    message = str(info.value)
    assert "\n" not in message and str(archive) in message
    assert f"extracted size: expected at most {1 << 20} bytes" in message and f"{8 << 20} bytes" in message
    assert not out.exists() and leftovers(tmp_path) == ["bomb.zip"]


def test_default_cap_is_a_multiple_of_the_archive_size(tmp_path, monkeypatch):
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(tar_bytes({"zeros.bin": bytes(4 << 20)}, mode="w:gz"))
    monkeypatch.setattr(dl, "EXTRACT_FLOOR_BYTES", 1024)  # the real floor (256 MiB) is too big to test quickly
    cap = dl.EXTRACT_RATIO * archive.stat().st_size
    assert dl.default_extract_limit(archive.stat().st_size) == cap < 4 << 20
    with pytest.raises(ArchiveError, match=f"at most {cap} bytes \\({dl.EXTRACT_RATIO} times the archive's size"):
        extract(archive, tmp_path / "out")
    assert leftovers(tmp_path) == ["bomb.tar.gz"]
    assert dl.default_extract_limit(10) == 1024


def test_nested_zips_share_one_cap(tmp_path):
    inner = zip_bytes({"zeros.bin": bytes(3 << 20)})
    archive = tmp_path / "outer.zip"
    archive.write_bytes(zip_bytes({"a/inner.zip": inner, "a/b.txt": b"x"}))
    with pytest.raises(ArchiveError, match="extracted size"):
        extract(archive, tmp_path / "out", nested=True, max_bytes=2 << 20)  # the outer alone fits
    assert leftovers(tmp_path) == ["outer.zip"]
    extract(archive, tmp_path / "out", nested=True, max_bytes=4 << 20)
    assert (tmp_path / "out" / "a" / "zeros.bin").stat().st_size == 3 << 20


def test_free_space_checked_before_extracting(tmp_path, monkeypatch):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"a/x.bin": noise(50_000)}))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ArchiveError) as info:
        extract(archive, tmp_path / "out")
    assert "free space: expected" in str(info.value) and "got 1000; nothing extracted" in str(info.value)
    assert leftovers(tmp_path) == ["a.zip"]


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_member_that_is_a_file_and_a_folder(tmp_path, kind, verbs, capsys):
    files = {"ok/first.txt": b"1", "a": b"I am a file", "a/b": b"and a folder"}
    archive = tmp_path / f"clash.{kind}"
    archive.write_bytes(zip_bytes(files) if kind == "zip" else tar_bytes(files))
    with pytest.raises(ArchiveError, match="a path that is a file or a folder, not both \\('a' is a file and "
                                           "'a/b' lies inside it\\)"):
        extract(archive, tmp_path / "out")
    assert leftovers(tmp_path) == [archive.name]


def test_clash_with_existing_content_moves_nothing(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "x").write_text("an existing file")
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"a_first/f.txt": b"1", "x/y.txt": b"2"}))  # a_first is merged before x
    with pytest.raises(ArchiveError, match="existing file: expected a folder, to receive x/"):
        extract(archive, root)
    assert leftovers(root) == ["x"] and (root / "x").read_text() == "an existing file"
    assert leftovers(tmp_path) == ["a.zip", "root", "root/x"]


def test_corrupt_archives_are_one_line(tmp_path):
    good = zip_bytes({"a.bin": noise(20_000)})
    broken = bytearray(good)
    broken[100:140] = bytes(40)  # inside the deflate stream: the CRC (or zlib) must catch it
    cases = {"bad.zip": bytes(broken),
             "truncated.tar.gz": tar_bytes({"x.bin": noise(30_000)}, mode="w:gz")[:5_000]}
    for name, data in cases.items():
        archive = tmp_path / name
        archive.write_bytes(data)
        with pytest.raises(ArchiveError) as info:
            extract(archive, tmp_path / "out")
        message = str(info.value)
        assert "\n" not in message and "content: expected a readable zip or tar archive" in message, message
        assert "nothing extracted" in message
        assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_disk_filling_during_extraction_leaves_nothing(tmp_path, monkeypatch):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"a/1.bin": noise(3 * dl.CHUNK_BYTES), "a/2.bin": b"2"}))
    real_open = open

    def filling_open(path, mode="r", *args, **kwargs):  # another job fills the disk after the free-space check
        if "w" in mode:
            return FillingFile(path, mode, room=dl.CHUNK_BYTES)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(dl, "open", filling_open, raising=False)
    root = tmp_path / "root"
    with pytest.raises(ArchiveError, match=f"extracting into {root}: expected the members written to disk, got "
                                           "No space left on device \\(ENOSPC\\); nothing extracted"):
        extract(archive, root)
    assert leftovers(tmp_path) == ["a.zip"]


def test_cli_extract_cap_flag(server, verbs, tmp_path, capsys):
    payload = zip_bytes({"annotations/panoptic_val2017.json": bytes(2 << 20),
                         "annotations/panoptic_val2017.zip": zip_bytes({"p/1.png": b"png"})})
    server.routes["/p.zip"] = Route(payload)
    archive, root = tmp_path / "dl" / "p.zip", tmp_path / "coco"
    code = cli.main(["download", "coco_panoptic_annotations", "--dest", str(archive), "--url",
                     server.url("/p.zip"), "--sha256", sha256(payload), "--size", str(len(payload)),
                     "--extract-to", str(root), "--max-extract-bytes", "1000000", "--no-progress"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "extracted size: expected at most 1000000 bytes" in line
    assert not root.exists() and leftovers(tmp_path / "dl") == ["p.zip"]  # the verified download is kept


# ---------------------------------------------------------------------------------------------- lock file, --url


def test_checksum_lock_that_is_not_utf8(verbs, tmp_path, capsys):
    lock = tmp_path / "checksums.lock.yaml"
    lock.write_bytes(b"png_coco_val2017:\n  sha256: \xff\xfe\x00garbage\n")
    mirror = tmp_path / "png.json"
    mirror.write_text("[]")
    dest = tmp_path / "out" / "png_coco_val2017.json"
    code = cli.main(["download", "png_coco_val2017", "--dest", str(dest), "--url", str(mirror), "--lock",
                     str(lock), "--no-progress"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert f"{lock}: encoding: expected UTF-8 text" in line and "byte 28 is b'\\xff'" in line
    assert not dest.exists()


def test_checksum_lock_entry_that_is_not_a_mapping(tmp_path):
    lock = tmp_path / "checksums.lock.yaml"
    lock.write_text("png_coco_val2017: 5\n")
    with pytest.raises(InputError, match="png_coco_val2017: expected a mapping with a 64-hex-digit sha256"):
        dl.record_checksum(lock, "png_coco_val2017", "a" * 64, 1)
    assert lock.read_text() == "png_coco_val2017: 5\n"


def test_url_naming_a_directory(verbs, tmp_path, capsys):
    dest = tmp_path / "out" / "val2017.zip"
    code = cli.main(["download", "coco_val2017_images", "--dest", str(dest), "--url", str(tmp_path),
                     "--no-progress"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert f"{tmp_path}: local file: expected a file to download, not a directory" in line
    assert f"e.g. {tmp_path / 'val2017.zip'}" in line
    assert not (tmp_path / "out").exists()
