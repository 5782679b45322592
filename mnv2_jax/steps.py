"""The jitted training and evaluation steps.

`make_train_step` returns `step(state, batch) -> (state, metrics)`: normalise the uint8 images
on device, forward in training mode (batch statistics over the global batch, dropout keyed by
`fold_in(rng, step)`), label-smoothed cross entropy, optax update (weight decay is in the optax
chain), EMA of parameters and batch-norm statistics. `make_eval_step` returns per-batch *sums*
(loss, top-1, top-5, count) over the masked-in examples so evaluation is exact for any dataset
size and any number of processes.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from mnv2_jax import ema as ema_lib
from mnv2_jax import losses
from mnv2_jax.image_norm import normalize
from mnv2_jax.models import layers
from mnv2_jax.train_state import TrainState


def apply_update(state: TrainState, grads, batch_stats, tx: optax.GradientTransformation,
                 ema_decay: float) -> TrainState:
  """One optimizer update of `state` with `grads`, the new BN statistics and the EMA of both
  (every task's train step ends with it: classifier, `dense.detection`, `dense.segmentation`)."""
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema_params, ema_stats = state.ema_params, state.ema_batch_stats
  if ema_decay > 0:
    ema_params = ema_lib.ema_update(ema_params, params, state.step, ema_decay)
    ema_stats = ema_lib.ema_update(ema_stats, batch_stats, state.step, ema_decay)
  return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                       opt_state=opt_state, ema_params=ema_params, ema_batch_stats=ema_stats)


def make_train_step(model, tx: optax.GradientTransformation, schedule, *, num_classes: int,
                    label_smoothing: float, ema_decay: float) -> Callable:
  def step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    images = normalize(batch["image"], jnp.float32)
    labels = batch["label"]
    dropout_rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_fn(params):
      logits, updates = model.apply(
          {"params": params, "batch_stats": state.batch_stats}, images, train=True,
          mutable=["batch_stats"], rngs={"dropout": dropout_rng})
      loss = losses.cross_entropy(logits, labels, num_classes=num_classes,
                                  label_smoothing=label_smoothing)
      return loss, (logits, updates["batch_stats"])

    (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    new_state = apply_update(state, grads, batch_stats, tx, ema_decay)
    metrics = {
        "loss": loss,
        "top1": jnp.mean(losses.topk_correct(logits, labels, 1)),
        "lr": schedule(state.step),
        "grad_norm": optax.tree.norm(grads),
    }
    return new_state, metrics

  return step


def make_eval_step(model) -> Callable:
  def step(variables: dict, batch: dict) -> dict:
    images = normalize(batch["image"], jnp.float32)
    logits = model.apply(variables, images, train=False)
    mask = batch["mask"].astype(jnp.float32)
    labels = batch["label"]
    per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return {
        "loss": jnp.sum(per_example * mask),
        "top1": jnp.sum(losses.topk_correct(logits, labels, 1) * mask),
        "top5": jnp.sum(losses.topk_correct(logits, labels, 5) * mask),
        "count": jnp.sum(mask),
    }

  return step


def make_bn_stats_step(model) -> Callable:
  """Forward in training mode returning this batch's own statistics, for BN recalibration.

  `step(variables, batch)` returns a tree laid out like `variables["batch_stats"]` holding, for
  every batch-norm layer, the batch mean and biased variance of its input over this (global)
  batch: the moments the layers sow into `layers.BN_MOMENTS`, not the running averages after
  one momentum update. Dropout is off (it only acts after the last batch norm).
  """
  def step(variables: dict, batch: dict):
    images = normalize(batch["image"], jnp.float32)
    _, updates = model.apply(variables, images, train=True,
                             mutable=["batch_stats", layers.BN_MOMENTS],
                             rngs={"dropout": jax.random.key(0)})
    return updates[layers.BN_MOMENTS]

  return step
