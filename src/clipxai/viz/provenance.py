"""What every table and figure carries so the report can trace it: a JSON sidecar, and deterministic files.

The contract (any rule that makes a table or a figure for the report follows it, see rules/report.smk):

- a table is ``results/tables/<name>.csv`` (tidy, one row per entry) and a figure ``results/figures/<name>.png``
  (with a ``.pdf`` beside it);
- beside either lies ``<name>.json``, the sidecar, written by the command that made the file::

      {"title": "...", "caption": "...", "rule": "table_grounding", "command": "clipxai table-grounding",
       "inputs": ["results/.../chefer2021_summary.csv", ...], "section": "grounding"}

  ``title``, ``caption``, ``rule``, ``command`` and ``inputs`` are required: they are what the report shows as the
  item's provenance. ``section`` groups items on the page (default: "tables" / "figures"). Anything else is kept
  and may be used by a layout (e.g. ``layout``, ``files``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from clipxai.errors import InputError
from clipxai.io import atomic_path, write_csv, write_json

REQUIRED_KEYS = ("title", "caption", "rule", "command", "inputs")


def sidecar_path(artifact: str | Path) -> Path:
    """The sidecar of a table (.csv) or figure (.png): the same name with ``.json``."""
    return Path(artifact).with_suffix(".json")


def write_sidecar(artifact: str | Path, *, title: str, caption: str, rule: str, command: str,
                  inputs: Iterable[str | Path], section: str | None = None, **extra: Any) -> Path:
    """Write the sidecar of ``artifact`` (atomic, sorted keys: identical inputs give identical bytes)."""
    meta = {"title": title, "caption": caption, "rule": rule, "command": command,
            "inputs": [str(p) for p in inputs], **extra}
    if section:
        meta["section"] = section
    path = sidecar_path(artifact)
    write_json(path, meta)
    return path


def read_sidecar(artifact: str | Path) -> dict:
    """The sidecar of ``artifact``, checked: InputError names the file and the missing or malformed key."""
    path = sidecar_path(artifact)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "(file)", f"the sidecar of {artifact} (title, caption, rule, command, inputs), "
                         "written by the rule that made it") from None
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(path, "(file)", f"a JSON sidecar ({err})") from None
    if not isinstance(meta, dict):
        raise InputError(path, "(top level)", "a JSON object")
    for key in REQUIRED_KEYS:
        if key not in meta:
            raise InputError(path, key, "a key of the sidecar (see clipxai.viz.provenance)")
    for key in ("title", "caption", "rule", "command"):
        if not isinstance(meta[key], str):
            raise InputError(path, key, f"a string, got {type(meta[key]).__name__}")
    if not isinstance(meta["inputs"], list) or not all(isinstance(p, str) for p in meta["inputs"]):
        raise InputError(path, "inputs", "a list of paths (strings)")
    return meta


def save_figure(fig, out_png: str | Path, dpi: int = 110) -> tuple[Path, Path]:
    """Save ``fig`` as ``out_png`` and a PDF beside it, atomically and without timestamps (same input, same bytes)."""
    png = Path(out_png).with_suffix(".png")
    pdf = png.with_suffix(".pdf")
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None})
    return png, pdf


def publish_figure(fig, out_png: str | Path, **sidecar: Any) -> Path:
    """Save ``fig`` (PNG + PDF, :func:`save_figure`), close it, and write its sidecar (:func:`write_sidecar`'s
    keywords); returns the PNG's path."""
    import matplotlib.pyplot as plt

    png, _ = save_figure(fig, out_png)
    plt.close(fig)
    write_sidecar(png, **sidecar)
    return png


def publish_table(table, out_csv: str | Path, **sidecar: Any) -> Path:
    """Write ``table`` (a DataFrame) as ``out_csv`` (clipxai.io.write_csv) and its sidecar (:func:`write_sidecar`'s
    keywords); returns the sidecar's path."""
    write_csv(out_csv, table)
    return write_sidecar(out_csv, **sidecar)
