"""Errors a user can act on: every bad input names the file, the field and what was expected."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input. Printed by the CLI as one line: ``<path>: <field>: expected <expected>``."""

    def __init__(self, path: str | Path, field: str, expected: str):
        self.path = str(path)
        self.field = field
        self.expected = expected
        super().__init__(f"{self.path}: {field}: expected {expected}")
