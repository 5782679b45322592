"""Logging tests: W&B is isolated by tests/conftest.py; this adds the offline-mode fixture."""

from __future__ import annotations

import pytest


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
  """``WANDB_MODE=offline`` and ``WANDB_DIR`` in this test's tmp dir; returns that dir."""
  wandb_dir = tmp_path / "wandb_dir"
  wandb_dir.mkdir()
  monkeypatch.setenv("WANDB_MODE", "offline")
  monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
  return wandb_dir
