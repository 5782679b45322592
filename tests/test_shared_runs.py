"""tests/shared_runs.py: a session's shared result is made once, by one process, and a failed
attempt is not retried into a half-written directory."""

import multiprocessing
import os
import time

import pytest

from shared_runs import made_once


def _make_slowly(target):
  """Records who made `target` (appends this pid to a log beside it), slowly enough that a
  second caller arrives while it runs."""
  with open(target.parent / "makers.log", "a") as f:
    f.write(f"{os.getpid()}\n")
  time.sleep(1.0)
  target.mkdir()
  (target / "result").write_text("complete")


def _call(root):
  path = made_once(root, "thing", _make_slowly)
  return (path / "result").read_text()


def test_concurrent_callers_get_one_complete_result(tmp_path):
  with multiprocessing.get_context("spawn").Pool(3) as pool:
    results = pool.map(_call, [tmp_path] * 3)
  assert results == ["complete"] * 3
  assert len((tmp_path / "makers.log").read_text().split()) == 1   # made by one process


def test_a_failure_is_raised_again_and_not_retried(tmp_path):
  def fail(target):
    target.mkdir()   # half-written
    raise ValueError("out of disk")
  with pytest.raises(ValueError, match="out of disk"):
    made_once(tmp_path, "thing", fail)
  with pytest.raises(RuntimeError, match="thing could not be made .*ValueError: out of disk"):
    made_once(tmp_path, "thing", _make_slowly)
  assert not (tmp_path / "makers.log").exists()
