"""Shared test settings: one torch thread (the suite runs on 2 cores), the repository root, fast tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
