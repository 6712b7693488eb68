"""The attribution methods a config may name, as the workflow and the report need them without importing torch.

Standard library only: the Snakefile checks configs with it, and the report (whose environment has no torch and no
jsonschema) says which methods map no text.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any


def _registered_methods() -> dict[str, tuple[dict[str, Any], bool]]:
    """The attribution methods a config may name (registry name -> (parameter defaults, whether it maps text
    tokens too)), read from the source of
    clipxai.attribution with ``ast`` rather than imported: a misspelt method or parameter is caught when the
    workflow is parsed, before any job runs, without importing torch. A method is a class decorated ``@register``
    with literal ``name``, ``defaults`` and ``maps_text`` (inherited from a base class in the same package, or {} from Method).
    tests/test_config.py checks that this equals the imported registry (True for maps_text: Method's default)."""
    classes: dict[str, tuple[list[str], dict[str, Any], bool]] = {}
    for path in sorted((Path(__file__).parent / "attribution").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
            if not isinstance(node, ast.ClassDef):
                continue
            attrs = {target.id: ast.literal_eval(stmt.value) for stmt in node.body if isinstance(stmt, ast.Assign)
                     for target in stmt.targets if isinstance(target, ast.Name)
                     and target.id in ("name", "defaults", "maps_text")}
            registered = any(isinstance(d, ast.Name) and d.id == "register" for d in node.decorator_list)
            classes[node.name] = ([b.id for b in node.bases if isinstance(b, ast.Name)], attrs, registered)

    def inherited(cls: str, key: str, default: Any) -> Any:
        bases, attrs, _ = classes.get(cls, ([], {}, False))
        if key in attrs:
            return attrs[key]
        return next((inherited(base, key, default) for base in bases if base in classes), default)

    return {inherited(cls, "name", ""): (dict(inherited(cls, "defaults", {})), bool(inherited(cls, "maps_text", True)))
            for cls, (_, _, registered) in classes.items() if registered}


_METHODS = _registered_methods()
METHOD_PARAMETERS: dict[str, dict[str, Any]] = {name: defaults for name, (defaults, _) in _METHODS.items()}
# Methods that explain the image only (no text-token map, so no image->text scores): the report says so.
METHOD_MAPS_TEXT: dict[str, bool] = {name: maps_text for name, (_, maps_text) in _METHODS.items()}
