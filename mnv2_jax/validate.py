"""Checks run before anything is compiled or written: config values, dataset, run length, workdir.

Every error names the config field (as `section.field`) and the allowed values or range, so a
typo or an impossible value on the command line fails in seconds with a message that says what
to type instead. The checks test VALUES: nothing is built with stand-in numbers.

- `check_fields(config)`: every value that needs no dataset (what `mnv2-sweep` can check
  before any run starts), except the model's, which `check_model` checks;
- `check_config(config)`: `check_fields`, then the dataset's real sizes, the run's real
  durations (`RunLength`), the model constructed with the dataset's class count and the batch
  over the device mesh. The trainer calls it before `check_workdir`, which is the first thing
  that writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile

import tensorflow_datasets as tfds

from mnv2_jax import data
from mnv2_jax import logging as mlog
from mnv2_jax import optim
from mnv2_jax import parallel
from mnv2_jax import spec as spec_lib
from mnv2_jax import train_state
from mnv2_jax.data import options as data_options
from mnv2_jax.dense import tasks as dense_tasks

# Fields of config.json that must not change when an existing workdir is resumed.
_IDENTITY = ("model", "input.dataset", "input.resolution", "seed")


@dataclasses.dataclass(frozen=True)
class RunLength:
  """A run's durations in optimizer steps, from the dataset size and the global batch.

  Attributes:
    steps_per_epoch: `max(1, num_train // input.global_batch_size)`.
    total_steps: `train.num_steps` if > 0, else `ceil(train.num_epochs * steps_per_epoch)`.
    eval_every: `train.eval_every_steps` if > 0, else `round(train.eval_every_epochs *
      steps_per_epoch)` (at least 1); the last step always evaluates too.
    warmup_steps: `round(optim.warmup_epochs * steps_per_epoch)`, <= total_steps.
    decay_steps: the exponential schedule's staircase period (>= 1), None for the others.
  """
  steps_per_epoch: int
  total_steps: int
  eval_every: int
  warmup_steps: int
  decay_steps: int | None


@dataclasses.dataclass(frozen=True)
class CheckedRun:
  """What `check_config` found: the dataset's sizes, the run's length and its model."""
  info: data.DatasetInfo
  length: RunLength
  model: object  # the Flax module, constructed (not initialised)


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _int_at_least(value, low: int, field: str) -> None:
  if not _is_int(value) or value < low:
    raise ValueError(f"{field} must be an integer >= {low}, got {value!r}")


def _positive_finite(value, field: str) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
      math.isfinite(value) and value > 0):
    raise ValueError(f"{field} must be a finite number > 0, got {value!r}")


def _check_train(train) -> None:
  _int_at_least(train.num_steps, -1, "train.num_steps (> 0: the run length; <= 0: use "
                "train.num_epochs)")
  if train.num_steps <= 0:
    _positive_finite(train.num_epochs, "train.num_epochs (or set train.num_steps > 0)")
  _int_at_least(train.eval_every_steps, -1, "train.eval_every_steps (> 0: the eval period; "
                "<= 0: use train.eval_every_epochs)")
  if train.eval_every_steps <= 0:
    _positive_finite(train.eval_every_epochs,
                     "train.eval_every_epochs (or set train.eval_every_steps > 0)")
  for field in ("log_every_steps", "checkpoint_every_steps", "keep_checkpoints"):
    _int_at_least(train[field], 1, f"train.{field}")
  _int_at_least(train.bn_recalibration_batches, 0, "train.bn_recalibration_batches")
  if not isinstance(train.eval_ema, bool):
    raise ValueError(f"train.eval_ema must be True or False, got {train.eval_ema!r}")


def check_fields(config) -> None:
  """Every value that needs neither the dataset nor the devices; the model is `check_model`'s.

  Checks `wandb.mode`, that `seed` is an integer, the `train` section, the `input` section
  (`data.options.from_config`: dataset name form, splits, augmentation, crops, ...),
  `input.resolution` >= the architecture's minimum, both batch sizes >= 1, and every
  `config.optim` value (`optim.check_fields`). Raises ValueError naming the field.
  """
  if config.wandb.mode not in mlog.WANDB_MODES:
    raise ValueError(f"wandb.mode must be one of {mlog.WANDB_MODES}, got {config.wandb.mode!r}")
  if not _is_int(config.seed) or not -2**31 <= config.seed < 2**31:
    raise ValueError(f"seed must be an integer in [-2**31, 2**31) (an int32: the trainer's "
                     f"init program takes it as an argument), got {config.seed!r}")
  _check_train(config.train)
  data_options.from_config(config.input)
  _int_at_least(config.input.resolution, spec_lib.MIN_RESOLUTION, "input.resolution")
  _int_at_least(config.input.global_batch_size, 1, "input.global_batch_size")
  _int_at_least(config.input.eval_batch_size, 1, "input.eval_batch_size")
  optim.check_fields(config.optim)


def check_model(config, num_classes: int):
  """Constructs `config.model` (cheap: no init, no tracing) and expands it at the run's size.

  The module's `__post_init__` rejects bad fields; the error is re-raised naming
  `model.<field>`. Returns the module. A config with a `head` section gets its detector /
  segmenter (`dense.tasks.build_model`, errors naming `head.<field>` or `model.<field>`).
  """
  if dense_tasks.task_of(config) != "classification":
    return dense_tasks.build_model(config, num_classes)
  try:
    model = train_state.build_model(config.model, num_classes)
    model.spec(config.input.resolution)
  except ValueError as e:
    message = str(e)
    field = message.split(" ", 1)[0].split("=", 1)[0]  # "field must..." or "field=value ..."
    if field in config.model:
      message = f"model.{message}"
    elif not message.startswith(("model.", "config.model")):
      message = f"config.model: {message}"
    raise ValueError(message) from e
  return model


def run_length(config, info: data.DatasetInfo) -> RunLength:
  """The run's durations from the dataset size; raises naming the field if one is impossible."""
  steps_per_epoch = max(1, info.num_train // config.input.global_batch_size)
  train = config.train
  total_steps = (train.num_steps if train.num_steps > 0
                 else max(1, math.ceil(train.num_epochs * steps_per_epoch)))
  eval_every = (train.eval_every_steps if train.eval_every_steps > 0
                else max(1, round(train.eval_every_epochs * steps_per_epoch)))
  warmup_steps, decay_steps = optim.schedule_steps(
      config.optim, steps_per_epoch=steps_per_epoch, total_steps=total_steps)
  return RunLength(steps_per_epoch, total_steps, eval_every, warmup_steps, decay_steps)


def dataset_info(input_cfg) -> data.DatasetInfo:
  """`data.dataset_info`, with an unknown TFDS name reported as a bad `input.dataset`."""
  try:
    return data.dataset_info(input_cfg)  # raises DatasetNotPreparedError with instructions
  except tfds.core.DatasetNotFoundError as e:  # its message lists every TFDS name
    hint = next((line.strip() for line in str(e).splitlines() if "Did you mean" in line), "")
    raise ValueError(
        f"input.dataset={input_cfg.dataset!r} is not a registered TFDS dataset; allowed: "
        f"'sklearn_digits', 'fashion_mnist_local', 'synthetic' or a name from `tfds.list_builders()` (e.g. "
        f"'imagenet2012', 'cifar10', 'imagenette/160px-v2'). {hint}".rstrip()) from None


def check_config(config) -> CheckedRun:
  """Validates the whole run before anything is written: fields, dataset, durations, model.

  Order: `check_fields` (no I/O), the dataset's sizes (the dataset must be prepared;
  sklearn_digits prepares itself, offline), `run_length`, `check_model` with the dataset's
  class count and its `impl` resolved for this backend, then both batch sizes over the device
  mesh of all processes.
  """
  check_fields(config)
  info = dataset_info(config.input)
  length = run_length(config, info)
  # `model.impl` resolved for this backend (raises for e.g. a native kernel off the CPU), logged.
  model = train_state.resolve_impl(check_model(config, info.num_classes))
  if getattr(model, "inference_split", 1) != 1:
    raise ValueError(f"model.inference_split={model.inference_split} is an inference schedule "
                     "(paper §5.1) and cannot train: train with 1 and evaluate the checkpoint "
                     "with it (mnv2-eval --workdir=RUN --inference_split=K)")
  parallel.check_batch_size(config.input.global_batch_size)
  parallel.check_batch_size(config.input.eval_batch_size, "input.eval_batch_size")
  return CheckedRun(info, length, model)


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
  """The workdir must be writable; resuming must not silently change the run's identity.

  Creates the workdir: call it after `check_config`, so that a rejected config writes nothing.
  """
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
