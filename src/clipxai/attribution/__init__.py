"""Attribution methods behind one signature, by name.

``get(name, **params)`` builds a method; ``method.attribute(loaded_model, images, texts) -> Attribution`` (image
maps at the patch grid, token relevance aligned with token positions). ``available()`` lists the names.
"""

from __future__ import annotations

from clipxai.attribution import baselines, chefer, dense, gradcam, perword, rollout  # noqa: F401  (registers)
from clipxai.attribution.base import REGISTRY, Attribution, Method, NotApplicableError, upsample
from clipxai.errors import InputError

__all__ = ["Attribution", "Method", "NotApplicableError", "available", "get", "upsample"]


def available() -> list[str]:
    """Registered method names, sorted."""
    return sorted(REGISTRY)


def get(name: str, **params) -> Method:
    """The method called ``name`` with its parameters (InputError for an unknown name or parameter)."""
    if name not in REGISTRY:
        raise InputError(name, "method", f"one of {', '.join(available())}")
    return REGISTRY[name](**params)
