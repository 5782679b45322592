"""Checks run before anything is compiled or written: config values, dataset, workdir.

Every error names the config field (as `section.field`) and, where there is a fixed set, the
allowed values, so a typo on the command line fails in seconds with a message that says what
to type instead.
"""

from __future__ import annotations

import json
import os
import tempfile

from mnv2_jax import data
from mnv2_jax import logging as mlog
from mnv2_jax import optim
from mnv2_jax import train_state

# Fields of config.json that must not change when an existing workdir is resumed.
_IDENTITY = ("model", "input.dataset", "input.resolution", "seed")


def _positive(value, field: str):
  if not value > 0:
    raise ValueError(f"{field} must be > 0, got {value!r}")


def check_config(config) -> data.DatasetInfo:
  """Validates every section; returns the dataset's info (the dataset must be prepared)."""
  if config.wandb.mode not in mlog.WANDB_MODES:
    raise ValueError(f"wandb.mode must be one of {mlog.WANDB_MODES}, got {config.wandb.mode!r}")
  train = config.train
  if train.num_steps <= 0:
    _positive(train.num_epochs, "train.num_epochs (or set train.num_steps)")
  for field in ("log_every_steps", "checkpoint_every_steps", "keep_checkpoints"):
    _positive(train[field], f"train.{field}")
  if train.bn_recalibration_batches < 0:
    raise ValueError("train.bn_recalibration_batches must be >= 0")
  _positive(config.input.global_batch_size, "input.global_batch_size")
  _positive(config.input.eval_batch_size, "input.eval_batch_size")
  train_state.build_model(config.model, num_classes=10)  # field values; classes come later
  optim.make_optimizer(config.optim, steps_per_epoch=100, global_batch_size=96,
                       total_steps=10_000_000)  # names, schedules (durations checked later)
  info = data.dataset_info(config.input)  # raises DatasetNotPreparedError with instructions
  return info


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict):
      out.update(_flatten(v, key + "."))
    else:
      out[key] = v
  return out


def check_workdir(workdir: str, config) -> None:
  """The workdir must be writable; resuming must not silently change the run's identity."""
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=workdir, prefix=".write_test"):
      pass
  except OSError as e:
    raise ValueError(f"workdir {workdir!r} is not writable: {e}") from e
  saved_path = os.path.join(workdir, "config.json")
  if not (os.path.exists(saved_path) and os.path.isdir(os.path.join(workdir, "checkpoints"))):
    return
  with open(saved_path) as f:
    saved = _flatten(json.load(f))
  new = _flatten(json.loads(config.to_json_best_effort()))
  changed = sorted(k for k in new if k.startswith(_IDENTITY) and k in saved
                   and saved[k] != new[k])
  if changed:
    diffs = ", ".join(f"{k}: {saved[k]!r} -> {new[k]!r}" for k in changed)
    raise ValueError(f"workdir {workdir!r} holds a run with a different config ({diffs}); "
                     f"use a new --workdir or restore the original values")
