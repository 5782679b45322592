"""Shared config pieces: the typed `:arg` parser and the default sections of every config.

Every config file exposes `get_config(arg: str | None = None)`. The text after the colon in
`--config=configs/imagenet.py:width=0.75,res=160` is parsed by `parse_arg` against typed
defaults (big_vision's `configs/common.py` convention); fields are then overridden with
`--config.model.shortcut=expansion` etc. Durations are in epochs or steps and converted at run
time, so overriding the batch size never leaves a stale derived value behind.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from mnv2_jax import models
from mnv2_jax.data import options
from mnv2_jax.logging import default_wandb_config


def parse_arg(arg: str | None, **spec) -> ml_collections.ConfigDict:
  """Parses "a=1,b=x,flag" into a ConfigDict typed by the defaults in `spec`.

  A bare name sets a bool to True; a lone value binds to the first spec entry; an unknown key
  raises a ValueError naming it and the allowed keys.
  """
  out = ml_collections.ConfigDict(dict(spec))
  if not arg:
    return out
  keys = list(spec)
  for i, item in enumerate(a for a in arg.split(",") if a):
    if "=" in item:
      key, value = item.split("=", 1)
    elif item in spec and isinstance(spec[item], bool):
      key, value = item, "true"
    elif i == 0 and keys:
      key, value = keys[0], item
    else:
      raise ValueError(f"config arg {item!r} is not key=value; allowed keys: {keys}")
    if key not in spec:
      raise ValueError(f"unknown config arg {key!r}; allowed keys: {keys}")
    default = spec[key]
    if isinstance(default, bool):
      if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError(f"config arg {key} must be true/false, got {value!r}")
      out[key] = value.lower() in ("true", "1")
    elif default is None:
      out[key] = value
    else:
      out[key] = type(default)(value)
  return out


def model_config(name: str = "mobilenet_v2", width: float = 1.0) -> ml_collections.ConfigDict:
  """`config.model`: `name` plus every field of `MobileNetV2`, with the module's defaults.

  Declared once, in the Flax module (`mnv2_jax.models.mobilenet`; the ablation axes' defaults are
  their baselines in `mnv2_jax.ablations`), and read from it here. `impl` is the `Impl`
  dataclass as a nested section (`mnv2_jax.ops.impl`). A MobileNetV1 config keeps the V2 axis
  fields (sweeps switch `model.name` by override); the trainer ignores them for V1.
  """
  fields = {f.name: f.default for f in dataclasses.fields(models.MobileNetV2)
            if f.name not in ("parent", "name", "num_classes")}
  fields["impl"] = ml_collections.ConfigDict(fields["impl"].to_dict())
  fields["width_multiplier"] = float(width)
  return ml_collections.ConfigDict({"name": name, **fields})


def input_config(dataset: str, resolution: int, batch_size: int) -> ml_collections.ConfigDict:
  """`config.input`: the fields of `mnv2_jax.data.options.InputOptions` with its defaults.

  Plus the batch sizes, which the trainer reads (not the input pipeline).
  """
  fields = options.defaults()
  c = ml_collections.ConfigDict({
      **{k: v for k, v in fields.items() if k not in ("data_dir", "manual_dir")},
      "dataset": dataset, "resolution": resolution, "global_batch_size": batch_size,
      "eval_batch_size": batch_size})
  # Paths are None by default and strings when set: typed references let `--config` set them.
  c.data_dir = ml_collections.FieldReference(fields["data_dir"], field_type=str)
  c.manual_dir = ml_collections.FieldReference(fields["manual_dir"], field_type=str)
  return c


def optim_config(**overrides) -> ml_collections.ConfigDict:
  """`config.optim`: the paper/slim recipe unless overridden (see `mnv2_jax.optim`)."""
  c = ml_collections.ConfigDict(dict(
      name="rmsprop_tf", base_lr=0.045, base_batch_size=96, schedule="exponential",
      decay_rate=0.98, decay_epochs=2.5, staircase=True, warmup_epochs=0.0, momentum=0.9,
      rmsprop_decay=0.9, rmsprop_eps=1.0, nesterov=False, weight_decay=4e-5,
      grad_clip_norm=0.0, label_smoothing=0.1, ema_decay=0.9999))
  c.update(overrides)
  return c


def sgd_cosine(base_lr: float, warmup_epochs: float) -> dict:
  """`config.optim` overrides of the short-run recipe (digits, fashion, small): SGD with Nesterov
  momentum 0.9, `base_lr` per 256 images, linear warm-up then cosine decay, no EMA (an EMA of
  0.9999 would barely move in a few thousand steps). Weight decay and label smoothing stay the
  paper's (4e-5, 0.1)."""
  return dict(name="sgd", base_lr=base_lr, base_batch_size=256, schedule="cosine",
              warmup_epochs=warmup_epochs, momentum=0.9, nesterov=True, ema_decay=0.0)


def base_config(*, dataset: str, resolution: int, batch_size: int, num_epochs: float,
                width: float = 1.0) -> ml_collections.ConfigDict:
  """A complete config; files override what differs."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.model = model_config(width=width)
  config.input = input_config(dataset, resolution, batch_size)
  config.optim = optim_config()
  config.train = ml_collections.ConfigDict(dict(
      num_epochs=float(num_epochs),
      num_steps=-1,               # > 0 overrides num_epochs
      log_every_steps=100,
      eval_every_steps=-1,        # > 0 overrides eval_every_epochs
      eval_every_epochs=1.0,
      checkpoint_every_steps=1000,
      keep_checkpoints=3,
      eval_ema=True,              # evaluate the EMA weights when optim.ema_decay > 0
      bn_recalibration_batches=0,  # > 0: recompute BN statistics before each eval
  ))
  config.compile_cache_dir = ml_collections.FieldReference(None, field_type=str)
  config.wandb = default_wandb_config()
  return config


def dense_config(*, head: str, dataset: str, resolution: int, batch_size: int,
                 num_epochs: float, width: float = 1.0) -> ml_collections.ConfigDict:
  """A detection / segmentation config: `base_config` plus `config.head` (the head, its loss
  and post-processing, `mnv2_jax.dense.tasks.head_config`), `config.init` (where the
  backbone's weights come from, `mnv2_jax.backbone_init.config`: random by default) and
  `config.dense_augment` (the task's augmentation, `mnv2_jax.dense.data.augment_config`), each
  with the defaults of the code that reads it. `config.input.augment` (the classifier's) is
  not used by dense runs."""
  from mnv2_jax import backbone_init  # pylint: disable=g-import-not-at-top
  from mnv2_jax.dense import data as dense_data  # pylint: disable=g-import-not-at-top
  from mnv2_jax.dense import tasks  # pylint: disable=g-import-not-at-top
  config = base_config(dataset=dataset, resolution=resolution, batch_size=batch_size,
                       num_epochs=num_epochs, width=width)
  config.head = tasks.head_config(head)
  config.init = backbone_init.config()
  config.dense_augment = dense_data.augment_config(tasks.TASKS[head], resolution)
  config.optim.label_smoothing = 0.0
  return config
