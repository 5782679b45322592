"""What several test modules read, made once per test session: the trained digits classifier
and a prepared `digit_scenes`.

Why: README's test command spreads whole modules over pytest-xdist workers (`--dist
loadscope`), so a module fixture is built once per module and a session fixture once per
*worker*. The 12-epoch `configs/digits.py` classifier (~50 CPU-s) was trained by
tests/train/test_learning.py and again, with the same config and seed, by
tests/test_dense_learning.py, and digit_scenes was prepared by three modules. Here each is
made once per session by whichever worker asks first, under an exclusive lock on a file in
the base temp dir that the session's workers share (the pattern pytest-xdist documents for
"session fixtures that run once"); a worker that asks meanwhile waits for it, and every later
one reads it. If making it fails, the failure is recorded and every later request fails with
it, instead of training again into a half-written directory.

Tests only read these. Each fixture returns paths inside the session's temp dir, which pytest
makes new for every session: nothing is reused from an earlier session.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
from typing import Callable

import pytest


def _shared_root(tmp_path_factory) -> pathlib.Path:
  """The directory every worker of this session sees: under pytest-xdist, the parent of the
  worker's own base temp dir (the session's); without it, the base temp dir itself."""
  base = tmp_path_factory.getbasetemp()
  worker = "PYTEST_XDIST_WORKER" in os.environ
  root = (base.parent if worker else base) / "shared_runs"
  root.mkdir(exist_ok=True)
  return root


def made_once(root: pathlib.Path, name: str, make: Callable[[pathlib.Path], None]
              ) -> pathlib.Path:
  """`root/name`, made by `make(root/name)` unless some process of the session already did.

  Concurrent callers serialise on `root/name.lock` (flock: released by the kernel if the
  holder dies). `root/name.done` marks a result that is complete; `root/name.failed` holds
  the error of an attempt that raised, which every later caller raises again.
  """
  target, done, failed = root / name, root / f"{name}.done", root / f"{name}.failed"
  with open(root / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if failed.exists():
      raise RuntimeError(f"{name} could not be made earlier in this session: "
                         f"{failed.read_text()}")
    if not done.exists():
      try:
        make(target)
      except BaseException as e:
        failed.write_text(f"{type(e).__name__}: {e}")
        raise
      done.write_text("")
  return target


DIGITS_EPOCHS = 12   # 12 of configs/digits.py's 30 epochs: the main job's digits preset length


def _train_digits_classifier(workdir: pathlib.Path) -> None:
  from configs import digits  # pylint: disable=g-import-not-at-top
  from mnv2_jax import train  # pylint: disable=g-import-not-at-top
  config = digits.get_config(f"epochs={DIGITS_EPOCHS}")
  config.wandb.mode = "disabled"
  config.train.eval_every_epochs = float(DIGITS_EPOCHS)   # one evaluation, at the end
  config.train.checkpoint_every_steps = 1000              # one checkpoint, at the end
  train.train_and_evaluate(config, str(workdir))


@pytest.fixture(scope="session")
def digits_classifier(tmp_path_factory) -> tuple[str, dict]:
  """(workdir, summary) of `configs/digits.py:epochs=12`, seed 0, W&B disabled: MobileNetV2
  0.35 at 32 px on the bundled digits, 264 steps of 64, evaluated and checkpointed once, at
  the end. Read-only."""
  workdir = made_once(_shared_root(tmp_path_factory), "digits_classifier",
                      _train_digits_classifier)
  with open(workdir / "summary.json") as f:
    return str(workdir), json.load(f)


@pytest.fixture(scope="session")
def scenes_data_dir(tmp_path_factory) -> str:
  """A TFDS data_dir holding the prepared `digit_scenes` (offline). Read-only."""
  def prepare(data_dir: pathlib.Path) -> None:
    from mnv2_jax.data import digit_scenes  # pylint: disable=g-import-not-at-top
    data_dir.mkdir()
    digit_scenes.prepare(os.fspath(data_dir))
  return os.fspath(made_once(_shared_root(tmp_path_factory), "digit_scenes",
                             prepare))
