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


@pytest.fixture(scope="session")
def slurm_cluster():
  """A real one-node SLURM on localhost (tests/sweeps/slurm_cluster.py), up for the session.

  Fails (never skips) without root or Debian's `slurmctld slurmd slurm-client munge`."""
  import slurm_cluster as sc  # pylint: disable=import-outside-toplevel  (tests/sweeps is on sys.path)
  try:
    cluster = sc.SlurmCluster.start()
  except (sc.SlurmUnavailable, sc.SlurmStartError) as e:
    why = str(e)
  else:
    why = None
  if why:
    pytest.fail(why, pytrace=False)
  try:
    yield cluster
  finally:
    cluster.close()
