"""Mobile DeepLabv3 training step and mIoU evaluation.

Train step: normalise, forward in training mode (logits already upsampled to the crop by the
model, as DeepLab's `upsample_logits=True`), per-pixel softmax cross entropy over the pixels
whose label is not `ignore_label` (`segmentation.loss.pixel_cross_entropy`), optax update, EMA.
Sharded over the mesh like the classifier's.

Evaluation: a confusion matrix summed on device over the eval split (padding examples of the
last batch are masked by setting their labels to `ignore_label`), then mIoU and pixel accuracy
on the host (`segmentation.metrics.miou`).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mnv2_jax import parallel
from mnv2_jax import steps
from mnv2_jax.image_norm import normalize
from mnv2_jax.segmentation import loss as loss_lib
from mnv2_jax.segmentation import metrics
from mnv2_jax.train_state import TrainState


def make_train_step(model, tx: optax.GradientTransformation, schedule, *, ignore_label: int,
                    ema_decay: float) -> Callable:
  def step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    images = normalize(batch["image"], jnp.float32)
    labels = batch["segmentation"].astype(jnp.int32)
    dropout_rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_fn(params):
      logits, updates = model.apply(
          {"params": params, "batch_stats": state.batch_stats}, images, train=True,
          mutable=["batch_stats"], rngs={"dropout": dropout_rng})
      loss, _ = loss_lib.pixel_cross_entropy(logits, labels, ignore_label=ignore_label)
      valid = labels != ignore_label
      acc = jnp.sum((jnp.argmax(logits, -1) == labels) & valid) / jnp.maximum(valid.sum(), 1)
      return loss, (acc, updates["batch_stats"])

    (loss, (acc, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    new_state = steps.apply_update(state, grads, batch_stats, tx, ema_decay)
    return new_state, {"loss": loss, "pixel_acc": acc, "lr": schedule(state.step),
                       "grad_norm": optax.tree.norm(grads)}

  return step


def make_eval_step(model, *, num_classes: int, ignore_label: int) -> Callable:
  """`step(variables, batch) -> {"confusion", "loss_sum", "pixels"}` (sums; to be jitted)."""
  def step(variables, batch):
    logits = model.apply(variables, normalize(batch["image"], jnp.float32), train=False)
    labels = batch["segmentation"].astype(jnp.int32)
    keep = batch["mask"].reshape((-1,) + (1,) * (labels.ndim - 1))
    labels = jnp.where(keep, labels, ignore_label)
    loss, valid = loss_lib.pixel_cross_entropy(logits, labels, ignore_label=ignore_label)
    return {"confusion": metrics.confusion_matrix(jnp.argmax(logits, -1), labels, num_classes,
                                                  ignore_label=ignore_label),
            "loss_sum": loss * valid, "pixels": valid}
  return step


def evaluate(eval_step, variables, batches, mesh) -> dict[str, float]:
  totals = None
  for local in batches:
    batch = parallel.global_batch(mesh, {k: local[k] for k in ("image", "segmentation",
                                                               "mask")})
    out = eval_step(variables, batch)
    totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
  totals = jax.device_get(totals)
  mean_iou, per_class = metrics.miou(np.asarray(totals["confusion"]))[:2]
  pixels = float(totals["pixels"])
  return {"eval/mIoU": float(mean_iou),
          "eval/pixel_acc": float(np.trace(totals["confusion"]) / max(pixels, 1.0)),
          "eval/loss": float(totals["loss_sum"]) / max(pixels, 1.0), "eval/pixels": pixels,
          **{f"eval/iou_{c}": float(v) for c, v in enumerate(per_class)}}
