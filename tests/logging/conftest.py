"""Isolates W&B from the machine: no credentials, no network, no writes outside tmp dirs.

Every ``WANDB_*`` variable inherited from the environment is removed (so a developer's key,
project or sweep id cannot change what a test sees), ``NETRC`` points at a file that does not
exist, and ``WANDB_BASE_URL`` at a closed local port, so even code that tried to go online
would fail fast instead of reaching the internet. wandb's data/cache/config/artifact staging
dirs go to a tmp dir. Module scope (not session) so the changes end with the last test here.

Note: no ``__init__.py`` in this directory on purpose. With one, ``tests/`` on ``sys.path``
could let ``tests/logging`` shadow the standard library ``logging`` (and clash with
``mnv2_jax.logging`` in test imports).
"""

from __future__ import annotations

import os
import socket

import pytest


def _closed_port() -> int:
  """A local TCP port with nothing listening (bound, then released)."""
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
    yield


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
  """``WANDB_MODE=offline`` and ``WANDB_DIR`` in this test's tmp dir; returns that dir."""
  wandb_dir = tmp_path / "wandb_dir"
  wandb_dir.mkdir()
  monkeypatch.setenv("WANDB_MODE", "offline")
  monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
  return wandb_dir
