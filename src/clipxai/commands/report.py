"""Verb ``report``: render results/report/index.html from result files only (tables, figures, provenance).

Every reproduced number shown is read from a results file of this run; every published number from
report/reported.yaml. The page is self-contained (figures copied beside it, no remote assets) and autoescaped,
so captions from data sets show as text.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import yaml

from clipxai.errors import InputError
from clipxai.io import write_text

NAME = "report"
HELP = "render the HTML report from the run's tables, figures and provenance"
TEMPLATES = Path(__file__).resolve().parents[3] / "report" / "templates"
PACKAGES = ["clipxai", "torch", "torchvision", "open_clip_torch", "snakemake", "numpy", "pandas", "scikit-image",
            "pillow", "matplotlib", "jinja2"]


def add_arguments(parser) -> None:
    parser.add_argument("--config-json", required=True, help="the config as run, as a JSON string")
    parser.add_argument("--reported", required=True, help="report/reported.yaml")
    parser.add_argument("--grounding-table", required=True, help="results/tables/grounding.csv")
    parser.add_argument("--zeroshot", nargs="*", default=[], help="results/<dataset>/<model>/zeroshot.csv files")
    parser.add_argument("--train-summaries", nargs="*", default=[], help="resources/models/<model>/train_summary.json")
    parser.add_argument("--figures", nargs="*", default=[], help="figure files (PNG) to embed, with .json captions")
    parser.add_argument("--benchmarks", nargs="*", default=[], help="benchmarks/**/*.tsv files")
    parser.add_argument("--inputs", nargs="*", default=[], help="input data files to checksum for provenance")
    parser.add_argument("--template-dir", default=str(TEMPLATES))
    parser.add_argument("--out", required=True, help="results/report/index.html")


def _format_number(value, digits: int = 4) -> str:
    """Counts as integers, measurements with fixed decimals, missing values as a dash."""
    if value is None or value != value:
        return "-"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return f"{float(value):.{digits}f}"


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).parent).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _machine() -> dict[str, str]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"platform": platform.platform(), "python": platform.python_version(), "processor":
            platform.processor() or platform.machine(), "cpu threads": str(torch.get_num_threads()), "gpu": gpu}


def _read_csv(path: str | Path, sep: str = ",") -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=sep)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, "(file)", f"a results CSV ({err})") from None


def _benchmarks(paths: list[str]) -> list[dict]:
    rows = []
    for path in sorted(paths):
        frame = _read_csv(path, sep="\t")
        job = str(Path(path).with_suffix("")).removeprefix("benchmarks/")
        rows.append({"job": job, "seconds": float(frame["s"].iloc[0]),
                     "max_rss_mb": float(frame["max_rss"].iloc[0]) if "max_rss" in frame else float("nan")})
    return rows


def grounding_comparison(table: pd.DataFrame, reported: dict) -> list[dict]:
    """Reproduced (faithful mode, macro IoU) beside the published CLIP-grounding values, per model."""
    paper = reported["grounding"]["values"]
    method_to_column = {"random": "random", "unimodal": "unimodal", "chefer2021": "clip"}
    rows = []
    faithful = table[(table["mode"] == "faithful") & table["method"].isin(method_to_column)]
    for (dataset, model, direction), block in faithful.groupby(["dataset", "model", "direction"], sort=True):
        for _, row in block.sort_values("method").iterrows():
            column = method_to_column[row["method"]]
            published = paper[direction][column]
            rows.append({"dataset": dataset, "model": model, "direction": direction, "method": row["method"],
                         "reproduced": row["macro_mean"], "lo": row["macro_lo"], "hi": row["macro_hi"],
                         "n": int(row["n_entries"]), "published": published,
                         "difference": row["macro_mean"] - published})
    return rows


def run(args) -> int:
    out = Path(args.out)
    try:
        config_text = yaml.safe_dump(json.loads(args.config_json), sort_keys=False)
    except json.JSONDecodeError as err:
        raise InputError("--config-json", "(JSON)", f"the workflow config as JSON ({err})") from None
    reported = yaml.safe_load(Path(args.reported).read_text())
    table = _read_csv(args.grounding_table)
    zeroshot = [(_read_csv(p), p) for p in args.zeroshot]
    figures = []
    for fig in args.figures:
        fig = Path(fig)
        if not fig.is_file():
            raise InputError(fig, "(file)", "a figure produced by a figure rule")
        caption_file = fig.with_suffix(".json")
        meta = json.loads(caption_file.read_text()) if caption_file.is_file() else {}
        target = out.parent / "figures" / fig.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fig, target)  # the report folder is self-contained: zip it and mail it
        figures.append({"src": f"figures/{fig.name}", "title": meta.get("title", fig.stem),
                        "caption": meta.get("caption", ""), "rule": meta.get("rule", ""),
                        "inputs": meta.get("inputs", [])})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(args.template_dir),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["num"] = _format_number
    html = env.get_template("index.html.j2").render(
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        reported=reported,
        grounding_rows=table.to_dict("records"),
        comparison=grounding_comparison(table, reported),
        zeroshot=[{"path": p, "rows": z.to_dict("records"), "columns": list(z.columns)} for z, p in zeroshot],
        training=[{"path": p, **json.loads(Path(p).read_text())} for p in args.train_summaries],
        figures=figures,
        config_text=config_text,
        versions=_versions(),
        commit=_git_commit(),
        machine=_machine(),
        benchmarks=_benchmarks(args.benchmarks),
        inputs=[{"path": p, "sha256": _sha256(Path(p))} for p in sorted(args.inputs)],
    )
    write_text(out, html)
    return 0
