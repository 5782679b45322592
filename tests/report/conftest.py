"""Report tests run W&B offline (isolation itself is in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def _offline_wandb(_isolated_wandb_env):
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv("WANDB_MODE", "offline")
    yield
