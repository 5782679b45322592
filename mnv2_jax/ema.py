"""Exponential moving average of model variables, with TF semantics.

Slim evaluates MobileNetV2 with ``tf.train.ExponentialMovingAverage(0.9999,
num_updates=global_step)`` applied to all model variables, batch-norm moving
mean/variance included. That class:

* starts each shadow variable at the variable's initial value;
* updates ``shadow <- shadow - (1 - d) * (shadow - value)``;
* uses ``d = min(decay, (1 + num_updates) / (10 + num_updates))`` when
  ``num_updates`` is given, so early in training the average tracks the
  weights closely instead of being dominated by the random initialisation.

Apply :func:`ema_update` to ``{"params": ..., "batch_stats": ...}`` (any
pytree) once per optimizer step, after the update, passing the step count
*before* that step's increment (0 on the first update). Slim groups the EMA
op and ``apply_gradients`` without ordering them, so which ``global_step`` and
which weights its EMA read was unspecified; this is the deterministic reading
(first update uses decay 1/10).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def ema_decay(step, decay: float, *, num_updates_warmup: bool = True):
  """Effective decay at ``step``: ``min(decay, (1 + step) / (10 + step))``.

  Args:
    step: number of updates so far (Python int or integer array; jit-able).
    decay: nominal decay, e.g. 0.9999.
    num_updates_warmup: False gives the constant ``decay`` (TF's EMA without
      ``num_updates``).

  Returns:
    Float32 scalar array.
  """
  decay = jnp.asarray(decay, jnp.float32)
  if not num_updates_warmup:
    return decay
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def ema_update(ema_tree, new_tree, step, decay, *, num_updates_warmup=True):
  """One EMA step over a pytree; pure and jit-able.

  Args:
    ema_tree: current averages (initialise with a copy of the variables).
    new_tree: the variables after this step's update, same structure.
    step: update count before this step (see module docstring).
    decay: nominal decay; a static 0 disables the EMA (returns ``new_tree``).
    num_updates_warmup: use TF's ``num_updates`` warm-up (see ema_decay).

  Returns:
    The new averages, each leaf in its original dtype.
  """
  if isinstance(decay, (int, float)) and decay == 0:
    return new_tree
  d = ema_decay(step, decay, num_updates_warmup=num_updates_warmup)

  def update(ema, new):
    one_minus = (1.0 - d).astype(ema.dtype)
    return ema - one_minus * (ema - new.astype(ema.dtype))

  return jax.tree.map(update, ema_tree, new_tree)
