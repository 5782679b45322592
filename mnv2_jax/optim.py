"""Optimizer and learning-rate schedule built from ``config.optim``.

The default recipe reproduces the TF-Slim MobileNetV2 training setup
(``train_image_classifier.py``) update for update:

* RMSProp exactly as TF1 ``tf.compat.v1.train.RMSPropOptimizer`` defines it:
  ``ms <- ms + (1 - rho) (g^2 - ms)`` with the ``ms`` slot initialised to ONES,
  ``mom <- mu mom + lr g / sqrt(ms + eps)`` (eps = 1.0 inside the sqrt) and
  ``w <- w - mom``. ``optax.rmsprop(eps_in_sqrt=True, initial_scale=1.0,
  momentum=mu)`` is that algorithm: it scales by the learning rate *before*
  the momentum trace, as TF does, so a decaying LR only affects new gradients.
* Learning rate scaled linearly with the global batch
  (``base_lr * global_batch_size / base_batch_size``; slim: 0.045 per 96
  images) and decayed by ``decay_rate`` every ``decay_epochs`` epochs in a
  staircase (``tf.compat.v1.train.exponential_decay(staircase=True)``).
* L2 weight decay as slim's ``l2_regularizer(wd)`` loss term
  ``wd * sum(w^2) / 2``: its gradient ``wd * w`` is added to the loss gradient
  before the optimizer sees it, on every ``kernel`` except depthwise ones
  (slim's ``separable_conv2d`` has no regulariser), never on batch-norm
  scale/bias or biases.

Label smoothing and the weight EMA live in :mod:`mnv2_jax.losses` and
:mod:`mnv2_jax.ema`; their config fields (``label_smoothing``, ``ema_decay``)
sit in ``config.optim`` but are not consumed here.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import optax

OPTIMIZERS = ("rmsprop_tf", "sgd", "adamw")
SCHEDULES = ("exponential", "cosine", "constant", "poly")
# Fields only one schedule reads, set by the configs that use it (configs/deeplabv3_voc.py):
# {field: schedule}.
SCHEDULE_FIELDS = {"poly_power": "poly"}
FIELDS = ("name", "base_lr", "base_batch_size", "schedule", "decay_rate", "decay_epochs",
          "staircase", "warmup_epochs", "momentum", "rmsprop_decay", "rmsprop_eps", "nesterov",
          "weight_decay", "grad_clip_norm", "label_smoothing", "ema_decay")
"""The fields of ``config.optim`` (see ``configs/common.py:optim_config``)."""


def _check_choice(field: str, value: Any, allowed: tuple[str, ...]) -> None:
  if value not in allowed:
    raise ValueError(
        f"optim.{field} must be one of {allowed}, got {value!r}")


def _is_number(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def _check_range(optim_cfg, field: str, low: float, high: float, *, low_open: bool,
                 high_open: bool) -> None:
  """``optim.<field>`` must be a finite number in the interval (open/closed as given)."""
  value = optim_cfg[field]
  ok = _is_number(value) and (value > low if low_open else value >= low) and (
      value < high if high_open else value <= high)
  if not ok:
    interval = (f"{'(' if low_open else '['}{low:g}, "
                f"{'inf' if high == math.inf else f'{high:g}'}{')' if high_open else ']'}")
    raise ValueError(f"optim.{field} must be a finite number in {interval}, got {value!r}")


def check_fields(optim_cfg) -> None:
  """Checks every ``config.optim`` value that does not depend on the run's length.

  Names and schedules must be known; the learning rate finite and > 0; weight decay, gradient
  clipping and warm-up finite and >= 0; label smoothing, EMA decay, momentum and RMSProp decay
  in [0, 1); ``rmsprop_eps`` > 0; for the exponential schedule ``decay_rate`` in (0, 1] and
  ``decay_epochs`` > 0. Raises ValueError naming ``optim.<field>`` and the allowed values.
  Duration-dependent limits are :func:`schedule_steps`'s.
  """
  present = tuple(optim_cfg.keys())
  unknown = sorted(set(present) - set(FIELDS) - set(SCHEDULE_FIELDS))
  missing = [f for f in FIELDS if f not in present]
  if unknown or missing:
    raise ValueError(f"config.optim has unknown fields {unknown} and lacks {missing}; its "
                     f"fields are {FIELDS}")
  _check_choice("name", optim_cfg.name, OPTIMIZERS)
  _check_choice("schedule", optim_cfg.schedule, SCHEDULES)
  for field in ("staircase", "nesterov"):
    if not isinstance(optim_cfg[field], bool):
      raise ValueError(f"optim.{field} must be True or False, got {optim_cfg[field]!r}")
  bs = optim_cfg.base_batch_size
  if isinstance(bs, bool) or not isinstance(bs, int) or bs <= 0:
    raise ValueError(f"optim.base_batch_size must be an integer >= 1, got {bs!r}")
  inf = math.inf
  _check_range(optim_cfg, "base_lr", 0.0, inf, low_open=True, high_open=True)
  for field in ("weight_decay", "grad_clip_norm", "warmup_epochs"):
    _check_range(optim_cfg, field, 0.0, inf, low_open=False, high_open=True)
  for field in ("label_smoothing", "ema_decay", "momentum", "rmsprop_decay"):
    _check_range(optim_cfg, field, 0.0, 1.0, low_open=False, high_open=True)
  _check_range(optim_cfg, "rmsprop_eps", 0.0, inf, low_open=True, high_open=True)
  for field, schedule in SCHEDULE_FIELDS.items():
    if optim_cfg.schedule == schedule and field not in present:
      raise ValueError(f"optim.{field} is required by optim.schedule={schedule!r}")
  if optim_cfg.schedule == "poly":
    _check_range(optim_cfg, "poly_power", 0.0, inf, low_open=True, high_open=True)
  if optim_cfg.schedule == "exponential":
    _check_range(optim_cfg, "decay_rate", 0.0, 1.0, low_open=True, high_open=False)
    _check_range(optim_cfg, "decay_epochs", 0.0, inf, low_open=True, high_open=True)


def schedule_steps(optim_cfg, *, steps_per_epoch: int, total_steps: int
                   ) -> tuple[int, int | None]:
  """``(warmup_steps, decay_steps)`` of a run of this length; raises naming the field.

  ``warmup_steps = round(warmup_epochs * steps_per_epoch)`` must fit in the run
  (``<= total_steps``); the exponential schedule's ``decay_steps = int(steps_per_epoch *
  decay_epochs)`` must be >= 1 (``None`` for the other schedules). ``check_fields`` runs first.
  """
  check_fields(optim_cfg)
  if steps_per_epoch <= 0 or total_steps <= 0:
    raise ValueError(
        f"steps_per_epoch and total_steps must be positive, got "
        f"{steps_per_epoch} and {total_steps}")
  warmup_steps = int(round(optim_cfg.warmup_epochs * steps_per_epoch))
  if warmup_steps > total_steps:
    raise ValueError(
        f"optim.warmup_epochs={optim_cfg.warmup_epochs} gives {warmup_steps} "
        f"warm-up steps, outside [0, total_steps={total_steps}] (allowed: optim.warmup_epochs "
        f"in [0, {total_steps / steps_per_epoch:g}] at {steps_per_epoch} steps per epoch)")
  if optim_cfg.schedule != "exponential":
    return warmup_steps, None
  decay_steps = int(steps_per_epoch * optim_cfg.decay_epochs)
  if decay_steps <= 0:
    raise ValueError(
        f"optim.decay_epochs={optim_cfg.decay_epochs} gives decay_steps="
        f"{decay_steps} with steps_per_epoch={steps_per_epoch}; need >= 1 (allowed: "
        f"optim.decay_epochs >= {1 / steps_per_epoch:g})")
  return warmup_steps, decay_steps


def peak_learning_rate(optim_cfg, *, global_batch_size: int) -> float:
  """Linear scaling rule: ``base_lr`` is the LR for ``base_batch_size`` images."""
  if global_batch_size <= 0 or optim_cfg.base_batch_size <= 0:
    raise ValueError(
        "global_batch_size and optim.base_batch_size must be positive, got "
        f"{global_batch_size} and {optim_cfg.base_batch_size}")
  return optim_cfg.base_lr * global_batch_size / optim_cfg.base_batch_size


def lr_schedule(optim_cfg, *, steps_per_epoch: int, global_batch_size: int,
                total_steps: int) -> optax.Schedule:
  """Returns the per-step learning rate (step = number of updates applied).

  A linear warm-up from 0 to the peak LR over ``warmup_epochs`` precedes every
  schedule (none when ``warmup_epochs == 0``). After it:

  * ``"exponential"``: ``peak * decay_rate ** floor(t / decay_steps)`` (or the
    smooth exponent when ``staircase`` is False), with ``t`` counted from the
    end of warm-up and ``decay_steps = int(steps_per_epoch * decay_epochs)``
    (slim's ``int(num_samples / batch_size * num_epochs_per_decay)``). With no
    warm-up this equals ``tf.compat.v1.train.exponential_decay``.
  * ``"cosine"``: half-cosine from the peak to 0, reaching 0 at
    ``total_steps`` (``optax.warmup_cosine_decay_schedule``).
  * ``"constant"``: the peak LR.
  * ``"poly"``: DeepLab's ``peak * (1 - t / T) ** poly_power`` down to 0 at the end of the
    run (``optax.polynomial_schedule``; T = total steps after warm-up).

  Args:
    optim_cfg: ``config.optim`` (see module docstring for the fields used).
    steps_per_epoch: optimizer steps per epoch at ``global_batch_size``.
    global_batch_size: images per optimizer step, summed over all devices.
    total_steps: length of the run in optimizer steps.

  Returns:
    An ``optax.Schedule`` mapping the step count to the learning rate.
  """
  warmup_steps, decay_steps = schedule_steps(
      optim_cfg, steps_per_epoch=steps_per_epoch, total_steps=total_steps)
  peak = peak_learning_rate(optim_cfg, global_batch_size=global_batch_size)

  if optim_cfg.schedule == "cosine":
    # optax counts decay_steps from step 0, warm-up included.
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak, warmup_steps=warmup_steps,
        decay_steps=max(total_steps, warmup_steps + 1), end_value=0.0)

  if optim_cfg.schedule == "exponential":
    main = optax.exponential_decay(
        init_value=peak, transition_steps=decay_steps,
        decay_rate=optim_cfg.decay_rate, staircase=optim_cfg.staircase)
  elif optim_cfg.schedule == "poly":
    main = optax.polynomial_schedule(init_value=peak, end_value=0.0,
                                     power=optim_cfg.poly_power,
                                     transition_steps=max(total_steps - warmup_steps, 1))
  else:  # constant
    main = optax.constant_schedule(peak)

  if warmup_steps == 0:
    return main
  warmup = optax.linear_schedule(0.0, peak, transition_steps=warmup_steps)
  # join_schedules evaluates `main` at (step - warmup_steps).
  return optax.join_schedules([warmup, main], boundaries=[warmup_steps])


def _path_names(path) -> tuple[str, ...]:
  """Turns a jax key path into plain strings (dict keys, attribute names, indices)."""
  names = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        names.append(str(getattr(key, attr)))
        break
    else:
      names.append(str(key))
  return tuple(names)


def decays_weight(names: tuple[str, ...]) -> bool:
  """Whether the parameter at this path gets L2 weight decay (slim's rule).

  Decayed: every leaf called ``kernel`` (stem, expand/project 1x1, head and
  logits kernels) unless some path component mentions ``depthwise``. Not
  decayed: depthwise kernels, batch-norm ``scale``/``bias``, all biases.
  """
  return (bool(names) and names[-1] == "kernel"
          and not any("depthwise" in n.lower() for n in names))


def weight_decay_mask(params):
  """Boolean pytree (same structure as ``params``): True where L2 decay applies.

  Works by path on any nesting of dicts/FrozenDicts, so it can also be handed
  to optax directly as a mask callable.
  """
  return jax.tree_util.tree_map_with_path(
      lambda path, _: decays_weight(_path_names(path)), params)


def _optional_momentum(momentum: float) -> float | None:
  return momentum if momentum else None


def make_optimizer(optim_cfg, *, steps_per_epoch: int, global_batch_size: int,
                   total_steps: int
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Builds the optax chain ``config.optim`` describes.

  Chain, in order:
    1. ``add_decayed_weights(weight_decay, mask=weight_decay_mask)`` — the
       gradient of slim's L2 loss (``rmsprop_tf`` and ``sgd`` only; ``adamw``
       applies ``weight_decay`` decoupled, which is what makes it AdamW);
    2. ``clip_by_global_norm(grad_clip_norm)`` if ``grad_clip_norm > 0``
       (clips the gradient of the total loss, L2 term included);
    3. the optimizer, driven by :func:`lr_schedule`: ``rmsprop_tf`` (TF1
       RMSProp, see module docstring), ``sgd`` (momentum/Nesterov like
       ``tf.compat.v1.train.MomentumOptimizer``) or ``adamw`` (``b1 =
       momentum``, optax defaults for ``b2`` and ``eps``; its decoupled decay
       is multiplied by the LR, so sensible values are ~1e-2, not 4e-5).

  Args:
    optim_cfg: ``config.optim``.
    steps_per_epoch: optimizer steps per epoch.
    global_batch_size: images per optimizer step over all devices.
    total_steps: run length in optimizer steps.

  Returns:
    ``(tx, schedule)``; log ``schedule(step)`` as the current learning rate.

  Raises:
    ValueError: any field :func:`check_fields` rejects, or durations that give
      no decay steps / more warm-up steps than ``total_steps`` (:func:`schedule_steps`).
  """
  schedule = lr_schedule(
      optim_cfg, steps_per_epoch=steps_per_epoch,
      global_batch_size=global_batch_size, total_steps=total_steps)
  wd = optim_cfg.weight_decay

  if optim_cfg.name == "rmsprop_tf":
    opt = optax.rmsprop(
        learning_rate=schedule,
        decay=optim_cfg.rmsprop_decay,
        eps=optim_cfg.rmsprop_eps,
        eps_in_sqrt=True,       # TF: sqrt(ms + eps).
        initial_scale=1.0,      # TF1: ms slot initialised to ones.
        momentum=_optional_momentum(optim_cfg.momentum),
        nesterov=optim_cfg.nesterov)  # TF has no Nesterov RMSProp.
  elif optim_cfg.name == "sgd":
    # Same order as tf.compat.v1.train.MomentumOptimizer: the trace accumulates
    # raw gradients and the current LR multiplies the whole trace.
    opt = optax.sgd(
        learning_rate=schedule,
        momentum=_optional_momentum(optim_cfg.momentum),
        nesterov=optim_cfg.nesterov)
  else:  # adamw
    opt = optax.adamw(
        learning_rate=schedule, b1=optim_cfg.momentum,
        weight_decay=wd, mask=weight_decay_mask, nesterov=optim_cfg.nesterov)

  parts = []
  if wd and optim_cfg.name != "adamw":
    parts.append(optax.add_decayed_weights(wd, mask=weight_decay_mask))
  if optim_cfg.grad_clip_norm and optim_cfg.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(optim_cfg.grad_clip_norm))
  parts.append(opt)
  return optax.chain(*parts), schedule
