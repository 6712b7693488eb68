"""The published numbers: reported.yaml (shipped in the package), loaded and checked, and a published entry beside a
reproduced value.

reported.yaml holds ``sources`` (where each paper printed its numbers), ``published`` (one entry per number, keyed by
id: the number as printed, its unit, source, table, model, data set, split, metric and whether it was checked
against the source, ``verified``), ``grounding`` (the CLIP-grounding paper's table layout, see
:mod:`clipxai.report.layouts`) and ``not_transcribed``. The workflow's rules pass the copy in their source tree
(src/clipxai/report/reported.yaml); an installed clipxai reads the packaged one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from clipxai.errors import InputError

# Package data (read through importlib.resources, so an installed clipxai renders from any folder).
REPORTED = resources.files("clipxai.report").joinpath("reported.yaml")
ENTRY_KEYS = ("published", "unit", "source", "table", "model", "dataset", "split", "metric", "verified")


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
