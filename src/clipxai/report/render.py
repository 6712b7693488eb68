"""Render the report folder (index.html + the figures and tables it shows) from result files only.

Every reproduced number on the page is read from a results file of this run (the tables given); every published
number from reported.yaml (:mod:`clipxai.report.reported`). Each table and figure carries a sidecar
(clipxai.viz.provenance) naming the rule, the command and the files it read; the page shows that provenance beside
it. The folder is self-contained (figures and tables copied beside index.html, CSS inlined, no script, no remote
asset) and every string from a data set or a result file is escaped by Jinja's autoescape. Tables are drawn by
their sidecar's ``layout`` (:mod:`clipxai.report.layouts`).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import yaml

from clipxai.errors import InputError
from clipxai.io import sha256_file, write_text
from clipxai.report.layouts import generic_view, grounding_blocks, grounding_comparisons
from clipxai.report.provenance import benchmarks, checksum_manifest, git_commit, machine, versions
from clipxai.report.reported import load_reported
from clipxai.viz.provenance import read_sidecar

SECTION_TITLES = {"grounding": "Cross-modal grounding", "saliency": "Saliency (seed 001)",
                  "zeroshot": "Zero-shot classification", "segmentation": "Dense segmentation",
                  "heads": "Attention heads explained with text", "tables": "Other tables", "figures": "Other figures"}


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


def names_in_tables(paths: list[str]) -> dict[str, set[str]]:
    """The data sets and models that some table has a row of (its ``dataset`` / ``model`` columns): the header
    lists those, not every name the config defines (a model defined but used by no section ran nothing)."""
    found: dict[str, set[str]] = {"dataset": set(), "model": set()}
    for path in paths:
        frame = pd.read_csv(path, usecols=lambda c: c in found, dtype=str, keep_default_na=False)
        for column in frame.columns:
            found[column].update(frame[column])
    return found


def render(config: dict, out_dir: str | Path, *, reported: str | Path | None = None, tables: list[str] = (),
           figures: list[str] = (), train_summaries: list[str] = (), inputs: list[str] = (),
           checksum_dirs: list[str] = (), benchmarks_dir: str | Path | None = None,
           template_dir: str | Path | None = None) -> str:
    """The HTML of the report of the run ``config`` (the config as run): ``tables`` and ``figures`` (each with its
    sidecar) are copied into ``out_dir`` on the way, ``inputs`` and every file under ``checksum_dirs`` checksummed
    (the latter into ``out_dir/inputs.sha256``). ``reported`` and ``template_dir`` default to the packaged files."""
    out_dir = Path(out_dir)
    reported = load_reported(reported)
    in_tables = names_in_tables(list(tables))
    tables = collect_tables(list(tables), out_dir, config, reported)
    figures = collect_figures(list(figures), out_dir)
    job_rows, rule_rows = benchmarks(benchmarks_dir)
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
    loader = (jinja2.PackageLoader("clipxai.report", "templates") if template_dir is None
              else jinja2.FileSystemLoader(str(template_dir)))
    env = jinja2.Environment(loader=loader,
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["num"] = format_number
    env.filters["signed"] = signed
    checksummed = []
    for raw in sorted(set(inputs)):
        path = Path(raw)
        if not path.is_file():
            raise InputError(path, "(file)", "an input data or model file to checksum")
        checksummed.append({"path": raw, "bytes": path.stat().st_size, "sha256": sha256_file(path)})
    manifest = checksum_manifest(list(checksum_dirs), out_dir / "inputs.sha256")
    return env.get_template("index.html.j2").render(
        manifest=manifest,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        commit=git_commit(),
        config=config,
        shown={"datasets": [n for n in config.get("datasets", {}) if n in in_tables["dataset"] or not tables],
               "models": [n for n in config.get("models", {}) if n in in_tables["model"] or not tables]},
        config_text=yaml.safe_dump(config, sort_keys=False),
        reported=reported,
        sections=sections(tables + figures),
        glance=glance,
        not_reproduced=not_reproduced,
        training=[{"path": p, **json.loads(Path(p).read_text())} for p in train_summaries],
        versions=versions(),
        machine=machine(),
        jobs=job_rows,
        rules=rule_rows,
        rule_seconds=rule_seconds,
        inputs=checksummed,
        mirrors=mirrors(config),
    )


def write_report(config: dict, out_dir: str | Path, **options) -> Path:
    """Render the report (:func:`render`, same options) and write ``out_dir/index.html`` (atomic); its path."""
    html = render(config, out_dir, **options)
    path = Path(out_dir) / "index.html"
    write_text(path, html)
    return path
