"""Isolates W&B for the report/offline-reading tests: no credentials, no network, tmp dirs.

Same recipe as tests/logging/conftest.py (every inherited ``WANDB_*`` variable removed,
``WANDB_BASE_URL`` on a closed local port, wandb's data/cache/config dirs in tmp). No
``__init__.py`` in this directory on purpose (see that file).
"""

from __future__ import annotations

import os
import socket

import pytest


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def _isolated_wandb_env(tmp_path_factory):
  root = tmp_path_factory.mktemp("wandb_home")
  with pytest.MonkeyPatch.context() as mp:
    for key in list(os.environ):
      if key.startswith("WANDB_"):
        mp.delenv(key)
    mp.setenv("NETRC", str(root / "no_such_netrc"))
    mp.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    for name, sub in (("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"),
                      ("WANDB_CONFIG_DIR", "config"), ("WANDB_ARTIFACT_DIR", "artifacts")):
      mp.setenv(name, str(root / sub))
    mp.setenv("WANDB_SILENT", "true")
    mp.setenv("WANDB_MODE", "offline")
    yield
