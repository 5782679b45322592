"""Sweep tests run from the repository root (config paths like ``configs/digits.py`` are
relative to it, as on the command line). No ``__init__.py`` here: see tests/logging/conftest.py.
"""

from __future__ import annotations

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
  monkeypatch.chdir(REPO)
