"""Where the report's page came from: the commit, package versions, the machine, checksums of the inputs, and the
per-job time and memory of the run (Snakemake's ``benchmark:`` files).

(The per-artifact provenance, the JSON sidecar beside each table and figure, is :mod:`clipxai.viz.provenance`.)
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections import defaultdict
from importlib import metadata
from pathlib import Path

import pandas as pd

from clipxai.errors import InputError
from clipxai.io import sha256_file, write_text

PACKAGES = ["clipxai", "torch", "torchvision", "open_clip_torch", "snakemake", "numpy", "pandas", "scikit-image",
            "pillow", "matplotlib", "jinja2", "grad-cam"]


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    here = Path(__file__).parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=here).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=here).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def checksum_manifest(folders: list[str], out: Path) -> dict | None:
    """sha256 of every file under ``folders`` (sorted), written as ``out`` in sha256sum's format; its summary."""
    if not folders:
        return None
    lines, total = [], 0
    for folder in sorted(set(folders)):
        root = Path(folder)
        if not root.is_dir():
            raise InputError(root, "(folder)", "an existing data or model folder to checksum")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            lines.append(f"{sha256_file(path)}  {path.as_posix()}")
            total += path.stat().st_size
    text = "\n".join(lines) + "\n"
    write_text(out, text)
    return {"file": out.name, "folders": sorted(set(folders)), "n_files": len(lines), "bytes": total,
            "sha256": hashlib.sha256(text.encode()).hexdigest()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _gpus() -> str:
    """GPU names from nvidia-smi (the report's environment has no torch); "none" without a driver."""
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return ", ".join(names) if result.returncode == 0 and names else "none"


def machine() -> dict[str, str]:
    """The machine the report was rendered on (jobs of a cluster run may have run elsewhere: see their logs)."""
    gpus = _gpus()
    return {"host OS": platform.platform(), "python": platform.python_version(), "CPU": _cpu_model(),
            "logical CPUs": str(os.cpu_count()), "memory": _memory_gib(), "GPU": gpus}


def benchmarks(folder: str | Path | None) -> tuple[list[dict], list[dict]]:
    """Per job (from Snakemake's ``benchmark:`` files) and per rule: wall seconds and peak resident memory."""
    if folder is None or not Path(folder).is_dir():
        return [], []
    folder = Path(folder)
    jobs = []
    for path in sorted(folder.rglob("*.tsv")):
        try:
            frame = pd.read_csv(path, sep="\t")
            seconds = float(frame["s"].iloc[-1])
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, KeyError, IndexError, ValueError) as err:
            raise InputError(path, "s", f"a Snakemake benchmark TSV ({err})") from None
        rss = frame["max_rss"].iloc[-1] if "max_rss" in frame else float("nan")
        rss = float(rss) if rss not in ("-", "NA") else float("nan")
        relative = path.relative_to(folder).with_suffix("")
        jobs.append({"rule": relative.parts[0], "job": "/".join(relative.parts[1:]) or relative.parts[0],
                     "seconds": seconds, "max_rss_mb": rss})
    per_rule = defaultdict(list)
    for job in jobs:
        per_rule[job["rule"]].append(job)
    rules = []
    for rule, items in sorted(per_rule.items()):
        rss = [j["max_rss_mb"] for j in items if j["max_rss_mb"] == j["max_rss_mb"]]
        rules.append({"rule": rule, "jobs": len(items), "total_s": sum(j["seconds"] for j in items),
                      "max_s": max(j["seconds"] for j in items), "max_rss_mb": max(rss) if rss else float("nan")})
    return jobs, rules
