"""Verb ``report``: render the report folder (index.html + the figures and tables it shows) from result files only.

Every reproduced number on the page is read from a results file of this run (the tables named with ``--tables``);
every published number from report/reported.yaml. Each table and figure carries a sidecar (clipxai.viz.provenance)
naming the rule, the command and the files it read; the page shows that provenance beside it. The folder is
self-contained (figures and tables copied beside index.html, CSS inlined, no script, no remote asset) and every
string from a data set or a result file is escaped by Jinja's autoescape.

Tables are rendered by their sidecar's ``layout``:

- ``grounding`` (clipxai table-grounding): the CLIP-grounding paper's layout, rows T2I / I2T, columns Random /
  CLIP-Unimodal / CLIP (report/reported.yaml ``grounding.columns``), reproduced [95% CI] and published per cell;
  faithful vs corrected protocol side by side; entries excluded and why.
- anything else: every column as is. A table that reproduces published numbers has a column ``reported`` (an id of
  reported.yaml ``published``) and a column ``value`` (fraction scale; ``lo`` / ``hi`` for its 95% CI): the report
  adds the published value and the difference.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
from collections import defaultdict
from datetime import datetime, timezone
from importlib import metadata, resources
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import yaml

from clipxai.errors import InputError
from clipxai.io import write_text
from clipxai.viz.provenance import read_sidecar
from clipxai.commands import _args
from clipxai.commands.table_grounding import coverage_text

NAME = "report"
HELP = "render the HTML report folder from the run's tables, figures and provenance"
log = logging.getLogger(__name__)
# Package data (read through importlib.resources, so an installed clipxai renders from any folder).
REPORTED = resources.files("clipxai.report").joinpath("reported.yaml")
PACKAGES = ["clipxai", "torch", "torchvision", "open_clip_torch", "snakemake", "numpy", "pandas", "scikit-image",
            "pillow", "matplotlib", "jinja2", "grad-cam"]
MAX_GENERIC_ROWS = 300
ENTRY_KEYS = ("published", "unit", "source", "table", "model", "dataset", "split", "metric", "verified")
SECTION_TITLES = {"grounding": "Cross-modal grounding", "saliency": "Saliency (seed 001)",
                  "zeroshot": "Zero-shot classification", "segmentation": "Dense segmentation",
                  "heads": "Attention heads explained with text", "tables": "Other tables", "figures": "Other figures"}


def add_arguments(parser) -> None:
    parser.add_argument("--config-json", required=True, help="the config as run, as a JSON string")
    parser.add_argument("--reported", default=None,
                        help="the published numbers (default: the packaged clipxai/report/reported.yaml)")
    parser.add_argument("--tables", nargs="*", action="extend", default=[],
                        help="table CSVs (each with its .json sidecar)")
    parser.add_argument("--figures", nargs="*", action="extend", default=[],
                        help="figure PNGs (each with .json sidecar, .pdf)")
    parser.add_argument("--train-summaries", nargs="*", action="extend", default=[],
                        help="resources/models/<model>/train_summary.json")
    parser.add_argument("--inputs", nargs="*", action="extend", default=[],
                        help="input data and model files to checksum")
    parser.add_argument("--checksum-dirs", nargs="*", action="extend", default=[],
                        help="data and model folders: every file in them is checksummed into inputs.sha256")
    parser.add_argument("--benchmarks-dir", default=None, help="the run's benchmarks/ folder (per-job .tsv)")
    parser.add_argument("--template-dir", default=None,
                        help="a folder with index.html.j2 and style.css (default: the packaged templates)")
    _args.add_output(parser, "--out-dir", kind="dir", required=True, help="the report folder (results/report)")


# --------------------------------------------------------------------------------------------- published numbers


def load_reported(path: str | Path | None = None) -> dict:
    """reported.yaml (default: the packaged one), checked, with each published entry's comparable ``value`` (fraction
    scale) filled in."""
    path = REPORTED if path is None else Path(path)
    try:
        reported = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, "(file)", f"a readable YAML file ({err})") from None
    if not isinstance(reported, dict):
        raise InputError(path, "(top level)", "a mapping with sources, published, grounding")
    sources = reported.get("sources") or {}
    published = reported.get("published") or {}
    for key, entry in published.items():
        for field in ENTRY_KEYS:
            if field not in entry:
                raise InputError(path, f"published.{key}.{field}", "a key of every published entry")
        if entry["source"] not in sources:
            raise InputError(path, f"published.{key}.source", f"a key of sources ({', '.join(sources)})")
        if entry["unit"] not in ("fraction", "percent"):
            raise InputError(path, f"published.{key}.unit", f"fraction or percent, got {entry['unit']!r}")
        if not isinstance(entry["published"], str):
            raise InputError(path, f"published.{key}.published", "the number as printed, quoted as a string")
        try:
            number = float(entry["published"])
        except ValueError:
            raise InputError(path, f"published.{key}.published", f"a number, got {entry['published']!r}") from None
        entry["value"] = number / 100 if entry["unit"] == "percent" else number
        entry["id"] = key
        entry["source_info"] = sources[entry["source"]]
    grounding = reported.get("grounding") or {}
    for i, column in enumerate(grounding.get("columns", [])):
        for direction in ("t2i", "i2t"):
            if column.get(direction) not in published:
                raise InputError(path, f"grounding.columns[{i}].{direction}", "an id of published")
    reported.setdefault("not_transcribed", [])
    return reported


def compare(reported: dict, key: str, value: float | None, comparable: bool = True,
            not_comparable_why: str = "different data / model") -> dict:
    """A published entry beside a reproduced value: the difference only when both exist, the entry is verified and
    the run is the published setting (same data and model, every entry); otherwise the reason it is not computed."""
    entry = reported["published"].get(key)
    if entry is None:
        return {"entry": None, "difference": None, "why": f"no published entry {key!r} in reported.yaml"}
    if value is None or value != value:
        return {"entry": entry, "difference": None, "why": "not reproduced in this run"}
    if not entry["verified"]:
        return {"entry": entry, "difference": None, "why": "published number unverified"}
    if not comparable:
        return {"entry": entry, "difference": None, "why": not_comparable_why}
    return {"entry": entry, "difference": float(value) - entry["value"], "why": ""}


# --------------------------------------------------------------------------------------------- grounding layout


def runs_column(method: str, params: dict, column: dict) -> bool:
    """Whether a configured method (registry name, parameters as configured) runs a published column's setting.

    Parameters left out of the config take the registry's defaults, which reported.yaml states per column
    (``defaults``; tests/test_report.py checks them against the registry, so the report needs no torch).
    """
    merged = {**column.get("defaults", {}), **params}
    return method == column["method"] and all(merged.get(k) == v for k, v in column["params"].items())


def setting_matches(config: dict, dataset: str, model: str, applies_to: dict) -> bool:
    """Whether (data set, model) of this run is the published setting of reported.yaml ``grounding.applies_to``."""
    dataset_spec = config.get("datasets", {}).get(dataset, {})
    model_spec = config.get("models", {}).get(model, {})
    return (dataset_spec.get("kind") == applies_to.get("dataset_kind")
            and model_spec.get("kind") == "open_clip"
            and model_spec.get("name") == applies_to.get("model_name")
            and (model_spec.get("pretrained") or "") == applies_to.get("pretrained", ""))


def _ci(row, metric: str = "macro") -> dict:
    return {"mean": float(row[f"{metric}_mean"]), "lo": float(row[f"{metric}_lo"]), "hi": float(row[f"{metric}_hi"]),
            "n": int(row["n_entries"]), "excluded": int(row["n_excluded"])}


def grounding_blocks(table: pd.DataFrame, exclusions: pd.DataFrame, config: dict, reported: dict) -> list[dict]:
    """Per (data set, model): the paper-layout rows, the faithful-vs-corrected rows and the exclusions."""
    layout = reported.get("grounding") or {}
    columns = layout.get("columns", [])
    methods = {label: (spec.get("method", label), {k: v for k, v in spec.items() if k != "method"})
               for label, spec in (config.get("grounding", {}).get("methods") or {}).items()}
    # which configured label (if any) runs each published column's setting
    column_label = {}
    for column in columns:
        for label, (name, params) in methods.items():
            if runs_column(name, params, column):
                column_label[column["title"]] = label
                break
    blocks = []
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=False):
        comparable = setting_matches(config, dataset, model, layout.get("applies_to", {}))
        # a partial run (max_entries) is never compared with the published numbers, whatever its setting
        partial = coverage_text(block)
        why_not = f"partial run: {partial}" if partial else "different data / model"
        labels_here = list(dict.fromkeys(block["method"]))
        extra = [label for label in labels_here if label not in column_label.values()]
        faithful = block[block["mode"] == "faithful"].set_index(["method", "direction"])
        paper_rows = []
        for direction in ("t2i", "i2t"):
            cells = []
            for column in columns:
                label = column_label.get(column["title"])
                found = label is not None and (label, direction) in faithful.index
                reproduced = _ci(faithful.loc[(label, direction)]) if found else None
                cells.append({"title": column["title"], "label": label, "reproduced": reproduced,
                              **compare(reported, column[direction], reproduced["mean"] if found else None,
                                        comparable and partial is None, why_not)})
            for label in extra:
                found = (label, direction) in faithful.index
                cells.append({"title": label, "label": label, "entry": None, "difference": None,
                              "why": "no published counterpart",
                              "reproduced": _ci(faithful.loc[(label, direction)]) if found else None})
            paper_rows.append({"direction": direction, "cells": cells})
        protocol_rows = []
        indexed = block.set_index(["method", "direction", "mode"])
        for label in labels_here:
            for direction in ("t2i", "i2t"):
                row = {"method": label, "direction": direction}
                for mode in ("faithful", "corrected"):
                    key = (label, direction, mode)
                    row[mode] = ({m: _ci(indexed.loc[key], m) for m in ("macro", "fg")} if key in indexed.index
                                 else None)
                if row["faithful"] and row["corrected"]:
                    row["delta_macro"] = row["corrected"]["macro"]["mean"] - row["faithful"]["macro"]["mean"]
                    row["delta_fg"] = row["corrected"]["fg"]["mean"] - row["faithful"]["fg"]["mean"]
                    row["differs"] = (abs(row["delta_macro"]) > 0 or abs(row["delta_fg"]) > 0
                                      or row["faithful"]["macro"]["n"] != row["corrected"]["macro"]["n"])
                else:
                    row["delta_macro"] = row["delta_fg"] = None
                    row["differs"] = False
                if row["faithful"] or row["corrected"]:
                    protocol_rows.append(row)
        mine = exclusions[(exclusions["dataset"] == dataset) & (exclusions["model"] == model)]
        blocks.append({
            "dataset": dataset, "model": model, "comparable": comparable, "partial": partial,
            "columns": [c["title"] for c in columns] + extra, "column_labels": column_label,
            "paper_rows": paper_rows, "protocol_rows": protocol_rows,
            "exclusions": mine.to_dict("records"),
        })
    return blocks


def grounding_comparisons(blocks: list[dict]) -> list[dict]:
    """The paper-layout cells that have a published value, as rows of the at-a-glance table."""
    rows = []
    for block in blocks:
        for paper_row in block["paper_rows"]:
            for cell in paper_row["cells"]:
                if cell["entry"] is not None:
                    rows.append({"what": f"{cell['title']}, {paper_row['direction'].upper()}",
                                 "where": f"{block['dataset']} / {block['model']} (faithful)",
                                 "reproduced": cell["reproduced"], **cell})
    return rows


# --------------------------------------------------------------------------------------------- generic tables


def row_coverage(record: dict) -> str | None:
    """``"N of M entries"`` of a row whose ``complete`` is false (M from ``n_split_images`` where the table has it);
    None for a complete row or a table without ``complete``."""
    complete = record.get("complete")
    if complete is None or str(complete).strip().lower() in ("true", "1", "1.0"):
        return None
    n, m = record.get("n_images"), record.get("n_split_images")
    if n is None:
        return "not every entry of the split"
    return f"{int(n)} of {int(m)} entries" if m is not None else f"{int(n)} entries, not the whole split"


def generic_view(frame: pd.DataFrame, reported: dict) -> dict:
    """Every column of a table; with a ``reported`` column, the published value and the difference per row (none for
    a partial row: ``complete`` false)."""
    has_reported = "reported" in frame.columns and "value" in frame.columns
    columns = [c for c in frame.columns if c != "reported"]
    rows = []
    partial = sorted({text for text in map(row_coverage, frame.to_dict("records")) if text})
    for record in frame.head(MAX_GENERIC_ROWS).to_dict("records"):
        row = {"cells": [record[c] for c in columns]}
        key = record.get("reported") if has_reported else None
        if isinstance(key, str) and key:
            value = record["value"]
            coverage = row_coverage(record)
            row["comparison"] = compare(reported, key, float(value) if value == value else None, coverage is None,
                                        f"partial run: {coverage}")
            row["reproduced"] = {"mean": value, "lo": record.get("lo"), "hi": record.get("hi")}
        rows.append(row)
    return {"columns": columns, "rows": rows, "has_reported": has_reported, "n_rows": len(frame),
            "partial": ", ".join(partial) or None,
            "truncated": len(frame) > MAX_GENERIC_ROWS}


# --------------------------------------------------------------------------------------------- provenance


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git_commit() -> str:
    here = Path(__file__).parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=here).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=here).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
            lines.append(f"{sha256(path)}  {path.as_posix()}")
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


# --------------------------------------------------------------------------------------------- rendering


def format_number(value, digits: int = 4) -> str:
    """Counts as integers, measurements with fixed decimals, missing values as a dash; text unchanged."""
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if value != value:
            return "-"
        if float(value).is_integer() and abs(value) >= 1000:
            return str(int(value))
        return f"{float(value):.{digits}f}"
    return str(value)


def signed(value, digits: int = 4) -> str:
    if value is None or value != value:
        return "-"
    return f"{float(value):+.{digits}f}"


def _copy(src: Path, folder: Path) -> str:
    """Copy ``src`` into the report folder (self-contained: zip it and mail it); return its relative path."""
    target = folder / src.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return f"{folder.name}/{src.name}"


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, "(file)", f"a results table CSV ({err})") from None


def collect_tables(paths: list[str], out_dir: Path, config: dict, reported: dict) -> list[dict]:
    tables = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise InputError(path, "(file)", "a table produced by a table rule")
        meta = read_sidecar(path)
        frame = _read_table(path)
        item = {"kind": "table", "name": path.stem, "meta": meta, "section": meta.get("section", "tables"),
                "csv": _copy(path, out_dir / "tables"), "layout": meta.get("layout", "generic")}
        if item["layout"] == "grounding":
            exclusions_path = Path(meta.get("files", {}).get("exclusions", ""))
            if not exclusions_path.is_file():
                raise InputError(path.with_suffix(".json"), "files.exclusions", "the exclusions CSV of the table")
            exclusions = _read_table(exclusions_path)
            item["exclusions_csv"] = _copy(exclusions_path, out_dir / "tables")
            if "complete" not in frame.columns:
                raise InputError(path, "complete", "a column of the grounding table (written by table-grounding)")
            item["blocks"] = grounding_blocks(frame, exclusions, config, reported)
        else:
            item["view"] = generic_view(frame, reported)
        tables.append(item)
    return tables


def collect_figures(paths: list[str], out_dir: Path) -> list[dict]:
    figures = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise InputError(path, "(file)", "a figure produced by a figure rule")
        meta = read_sidecar(path)
        pdf = path.with_suffix(".pdf")
        figures.append({"kind": "figure", "name": path.stem, "meta": meta, "section": meta.get("section", "figures"),
                        "src": _copy(path, out_dir / "figures"),
                        "pdf": _copy(pdf, out_dir / "figures") if pdf.is_file() else None})
    return figures


def sections(items: list[dict]) -> list[dict]:
    """Items grouped by section, sections in order of first appearance (tables before figures within one)."""
    order: dict[str, list] = {}
    for item in items:
        order.setdefault(item["section"], []).append(item)
    out = []
    for name, members in order.items():
        members = [m for m in members if m["kind"] == "table"] + [m for m in members if m["kind"] == "figure"]
        out.append({"id": name, "title": SECTION_TITLES.get(name, name.replace("_", " ").capitalize()),
                    "members": members})
    return out


def mirrors(config: dict) -> list[dict]:
    """The `sources:` overrides of the run and what each was verified against (the catalogue's checksums, the
    mirror's own, or nothing where the config said `checksum: none`)."""
    out = []
    for name, entry in (config.get("sources") or {}).items():
        if isinstance(entry, str):
            out.append({"source": name, "url": entry, "unverified": False, "checks": "the catalogue's checksums"})
        elif isinstance(entry, dict):
            given = [f"{k} {entry[k]}" for k in ("sha256", "md5", "size") if entry.get(k) is not None]
            out.append({"source": name, "url": entry.get("url", ""), "unverified": entry.get("checksum") == "none",
                        "checks": "the mirror's " + ", ".join(given) if given else ""})
    return out


def render(args) -> str:
    """The HTML of the report (figures and tables are copied into ``args.out_dir`` on the way)."""
    out_dir = Path(args.out_dir)
    try:
        config = json.loads(args.config_json)
    except json.JSONDecodeError as err:
        raise InputError("--config-json", "(JSON)", f"the workflow config as JSON ({err})") from None
    reported = load_reported(args.reported)
    tables = collect_tables(args.tables, out_dir, config, reported)
    figures = collect_figures(args.figures, out_dir)
    job_rows, rule_rows = benchmarks(args.benchmarks_dir)
    rule_seconds = {r["rule"]: r for r in rule_rows}
    glance = []  # one group per table that reproduces published numbers, in page order
    for table in tables:
        if table["layout"] == "grounding":
            rows = grounding_comparisons(table["blocks"])
        else:
            rows = [{"what": row["comparison"]["entry"]["metric"] if row["comparison"]["entry"] else row["cells"][0],
                     "where": ", ".join(str(c) for c in row["cells"][:2]), "reproduced": row["reproduced"],
                     **row["comparison"]}
                    for row in table["view"]["rows"] if "comparison" in row]
        if rows:
            glance.append({"table": table["meta"]["title"], "anchor": f"table-{table['name']}", "rows": rows})
    compared_ids = {row["entry"]["id"] for group in glance for row in group["rows"] if row.get("entry")}
    not_reproduced = [e for k, e in reported["published"].items() if k not in compared_ids]
    loader = (jinja2.PackageLoader("clipxai.report", "templates") if args.template_dir is None
              else jinja2.FileSystemLoader(args.template_dir))
    env = jinja2.Environment(loader=loader,
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["num"] = format_number
    env.filters["signed"] = signed
    inputs = []
    for raw in sorted(set(args.inputs)):
        path = Path(raw)
        if not path.is_file():
            raise InputError(path, "(file)", "an input data or model file to checksum")
        inputs.append({"path": raw, "bytes": path.stat().st_size, "sha256": sha256(path)})
    manifest = checksum_manifest(args.checksum_dirs, out_dir / "inputs.sha256")
    return env.get_template("index.html.j2").render(
        manifest=manifest,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        commit=_git_commit(),
        config=config,
        config_text=yaml.safe_dump(config, sort_keys=False),
        reported=reported,
        sections=sections(tables + figures),
        glance=glance,
        not_reproduced=not_reproduced,
        training=[{"path": p, **json.loads(Path(p).read_text())} for p in args.train_summaries],
        versions=_versions(),
        machine=machine(),
        jobs=job_rows,
        rules=rule_rows,
        rule_seconds=rule_seconds,
        inputs=inputs,
        mirrors=mirrors(config),
    )


def run(args) -> int:
    html = render(args)
    write_text(Path(args.out_dir) / "index.html", html)
    log.info("wrote %s", Path(args.out_dir) / "index.html")
    return 0
