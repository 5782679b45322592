"""SSDLite training step and COCO-style evaluation.

Train step (jitted over the mesh like the classifier's: batch sharded on its leading axis,
state replicated, BN statistics over the global batch): normalise the uint8 images, forward in
training mode, match every image's ground truth to the anchors on device
(`detection.matching.assign`, vmapped), `detection.loss.ssd_loss`, optax update, EMA.

Evaluation: the jitted inference forward and loss per batch, then on the host decoding + NMS
(`detection.postprocess.detect`, TF's combined NMS) and COCO mAP through pycocotools
(`detection.coco_eval.CocoEvaluator`) over every real (mask-true) image of the split, with
boxes scaled to each image's original size. Single-process only (the detections are gathered
on the host that computes mAP); `train_dense` rejects several processes.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mnv2_jax import parallel
from mnv2_jax import steps
from mnv2_jax.detection import anchors as anchors_lib
from mnv2_jax.detection import coco_eval
from mnv2_jax.detection import loss as loss_lib
from mnv2_jax.detection import matching
from mnv2_jax.detection import postprocess
from mnv2_jax.image_norm import normalize
from mnv2_jax.train_state import TrainState


def anchors_for(model, resolution: int) -> np.ndarray:
  """The anchors of `model` at `resolution`, in the predictors' order."""
  task = model.task(resolution)
  config = anchors_lib.AnchorConfig(num_layers=len(task.feature_sizes))
  boxes = anchors_lib.generate(task.feature_sizes, config)
  if boxes.shape[0] != task.num_anchors:
    raise AssertionError(f"{boxes.shape[0]} anchors for {task.num_anchors} predictions")
  return boxes


def _targets(batch, anchors):
  return jax.vmap(lambda b, c: matching.assign(b, c, anchors))(batch["boxes"],
                                                               batch["classes"])


def make_train_step(model, tx: optax.GradientTransformation, schedule, *, anchors: np.ndarray,
                    loss_cfg: dict[str, Any], ema_decay: float) -> Callable:
  anchors = jnp.asarray(anchors)

  def step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    images = normalize(batch["image"], jnp.float32)
    targets = _targets(batch, anchors)
    dropout_rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_fn(params):
      (codes, logits), updates = model.apply(
          {"params": params, "batch_stats": state.batch_stats}, images, train=True,
          mutable=["batch_stats"], rngs={"dropout": dropout_rng})
      loss, metrics = loss_lib.ssd_loss(logits, codes, targets, **loss_cfg)
      return loss, (metrics, updates["batch_stats"])

    (loss, (metrics, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    new_state = steps.apply_update(state, grads, batch_stats, tx, ema_decay)
    return new_state, {"loss": loss, **metrics, "lr": schedule(state.step),
                       "grad_norm": optax.tree.norm(grads)}

  return step


def make_eval_step(model, *, anchors: np.ndarray, loss_cfg: dict[str, Any]) -> Callable:
  """`eval_step(variables, batch) -> (box_codes, class_logits, loss)`, to be jitted: the
  inference forward and the training loss of the batch (matching + mined SSD loss) in one
  compiled program (run eagerly, the loss's matching and mining cost more than the forward)."""
  anchors = jnp.asarray(anchors)

  def eval_step(variables, batch):
    codes, logits = model.apply(variables, normalize(batch["image"], jnp.float32), train=False)
    loss, _ = loss_lib.ssd_loss(logits, codes, _targets(batch, anchors), **loss_cfg)
    return codes, logits, loss
  return eval_step


def evaluate(eval_step, variables, batches, mesh, *, anchors: np.ndarray, num_classes: int,
             postprocess_cfg: dict[str, Any]) -> dict[str, float]:
  """COCO box metrics (pycocotools) of `variables` over `batches` (the eval split, masked),
  plus the mean training loss on it (`eval/loss`); `eval_step` is `make_eval_step`'s, jitted."""
  evaluator = coco_eval.CocoEvaluator(num_classes)
  loss_sum, count = 0.0, 0
  for local in batches:
    batch = parallel.global_batch(mesh, {k: local[k] for k in ("image", "boxes", "classes")})
    codes, logits, loss = jax.device_get(eval_step(variables, batch))
    dets = postprocess.detect(np.asarray(logits), np.asarray(codes), anchors,
                              **postprocess_cfg)
    mask = np.asarray(local["mask"], bool)
    loss_sum += float(loss) * int(mask.sum())
    count += int(mask.sum())
    for i in np.flatnonzero(mask):
      valid = local["classes"][i] >= 0
      evaluator.add(int(local["image_id"][i]), int(local["height"][i]), int(local["width"][i]),
                    local["boxes"][i][valid], local["classes"][i][valid], dets[i],
                    gt_is_crowd=(local["is_crowd"][i][valid] if "is_crowd" in local else None))
  result = evaluator.result()
  out = {f"eval/{k}": float(v) for k, v in result.items()}
  out["eval/mAP"] = out.pop("eval/AP")
  out["eval/loss"] = loss_sum / max(count, 1)
  out["eval/count"] = float(count)
  return out
