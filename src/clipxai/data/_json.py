"""Reading users' JSON annotation files with errors that name the file, the entry and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clipxai.errors import InputError


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file; a missing or malformed file is an ``InputError`` saying what the file should be."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise InputError(path, "file", f"{what} (no such file)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(path, "file", f"{what} as valid JSON ({err})") from None


def require(obj: Any, key: str, kind: type | tuple[type, ...], path: str | Path, where: str,
            expected: str) -> Any:
    """``obj[key]`` if present and of type ``kind``, else ``InputError(path, "<where>.<key>", expected)``."""
    if not isinstance(obj, dict):
        raise InputError(path, where, f"an object with field {key!r}, got {type(obj).__name__}")
    if key not in obj:
        raise InputError(path, f"{where}.{key}", f"{expected} (field missing)")
    value = obj[key]
    # bool is a subclass of int in Python, but a JSON true/false is never an id or a size
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise InputError(path, f"{where}.{key}", f"{expected}, got {type(value).__name__} {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
