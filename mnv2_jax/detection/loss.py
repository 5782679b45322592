"""The SSD multibox loss with hard-example mining (jnp, fixed shapes, jit-able).

Follows the TF Object Detection API's `SSDMetaArch.loss` as configured in
`ssdlite_mobilenet_v2_coco.config` (`weighted_sigmoid` classification, `weighted_smooth_l1`
localisation, `hard_example_miner { num_hard_examples: 3000 iou_threshold: 0.99 loss_type:
CLASSIFICATION max_negatives_per_positive: 3 min_negatives_per_image: 3 }`,
`normalize_loss_by_num_matches: true`, both loss weights 1.0):

- classification, per anchor: "sigmoid" = `tf.nn.sigmoid_cross_entropy_with_logits` against
  the one-hot target over all K + 1 slots (background slot 0 included), summed over slots
  (`WeightedSigmoidClassificationLoss` + `reduce_sum_trailing_dimensions`); "softmax" = softmax
  cross-entropy over the K + 1 slots (`WeightedSoftmaxClassificationLoss`, logit_scale 1).
  Ignored anchors have class weight 0.
- localisation, per anchor: `tf.losses.huber_loss(delta=1)` summed over the 4 codes, on
  positives only (box weight 0 elsewhere). Convention: 0.5 x^2 for |x| <= 1, |x| - 0.5 above
  (Fast R-CNN's smooth L1; = `optax.huber_loss(delta=1.0)`, the 0.5 factor included).
- hard-example mining on the classification loss, per image: keep every positive and the
  max(min_negatives_per_image, int(negatives_per_positive * num_positives)) negatives of highest
  classification loss (TF's `_subsample_selection_to_desired_neg_pos_ratio`; int() truncates as
  TF's cast does). TF first takes at most `num_hard_examples` (3000) anchors of highest loss;
  that cap is kept (it only bites above 3000 anchors, e.g. 512x512 inputs). Both losses are
  summed over the mined anchors (loc loss is 0 on negatives anyway).
- normalisation: both sums are divided by max(1, number of positive anchors in the batch) (TF's
  normaliser is the sum of the regression weights, i.e. all matches, not only mined ones) and
  multiplied by their weights; loss = loc + cls.

**Deviation from TF's HardExampleMiner:** TF selects the candidates with
`tf.image.non_max_suppression(decoded_predicted_boxes, losses, num_hard_examples,
iou_threshold=0.99)`, i.e. it also drops an anchor whose *predicted* box overlaps a
higher-loss anchor's predicted box with IoU > 0.99. We skip that NMS: at 0.99 it only removes
near-duplicate predictions (it rarely changes the selection), and NMS has a data-dependent
sequential loop that is not jit/vmap-friendly. Selection here is a fixed-shape double argsort
(rank of each anchor's loss; ties go to the lower anchor index); the ranking is done on
stop-gradient losses, the loss itself stays differentiable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from mnv2_jax.detection.matching import Targets

CLASSIFICATIONS = ("sigmoid", "softmax")


def classification_losses(class_logits: jnp.ndarray, class_targets: jnp.ndarray,
                          classification: str = "sigmoid") -> jnp.ndarray:
  """Per-anchor classification loss [..., N] from logits [..., N, K+1] and targets [..., N]."""
  logits = class_logits.astype(jnp.float32)
  if classification == "sigmoid":
    onehot = jax.nn.one_hot(class_targets, logits.shape[-1], dtype=jnp.float32)
    return optax.sigmoid_binary_cross_entropy(logits, onehot).sum(-1)
  if classification == "softmax":
    return optax.softmax_cross_entropy_with_integer_labels(logits, class_targets)
  raise ValueError(f"classification must be one of {CLASSIFICATIONS}, got {classification!r}")


def localization_losses(box_codes: jnp.ndarray, box_targets: jnp.ndarray) -> jnp.ndarray:
  """Per-anchor smooth-L1 (huber, delta 1, with the 0.5 factor) summed over codes: [..., N]."""
  return optax.huber_loss(box_codes.astype(jnp.float32), box_targets, delta=1.0).sum(-1)


def _rank_descending(values: jnp.ndarray) -> jnp.ndarray:
  """Rank of each entry along the last axis, 0 = largest; ties: lower index ranks first."""
  order = jnp.argsort(-values, axis=-1, stable=True)
  return jnp.argsort(order, axis=-1, stable=True)


def mine(cls_losses: jnp.ndarray, positive: jnp.ndarray, negative: jnp.ndarray, *,
         negatives_per_positive: float = 3.0, min_negatives_per_image: int = 3,
         num_hard_examples: int | None = 3000) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Hard-example selection per image: [B, N] losses and masks -> (selected [B, N] bool,
  num selected negatives [B]). See the module docstring."""
  losses = jax.lax.stop_gradient(cls_losses)
  if num_hard_examples is not None and num_hard_examples < losses.shape[-1]:
    in_pool = _rank_descending(losses) < num_hard_examples
  else:
    in_pool = jnp.ones(losses.shape, bool)
  positive = positive & in_pool
  negative = negative & in_pool
  num_pos = positive.sum(-1)
  max_neg = jnp.maximum(min_negatives_per_image,
                        jnp.floor(negatives_per_positive * num_pos).astype(jnp.int32))
  neg_rank = _rank_descending(jnp.where(negative, losses, -jnp.inf))
  hard_negative = negative & (neg_rank < max_neg[..., None])
  return positive | hard_negative, hard_negative.sum(-1)


def ssd_loss(class_logits: jnp.ndarray, box_codes: jnp.ndarray, targets: Targets, *,
             classification: str = "sigmoid", negatives_per_positive: float = 3.0,
             min_negatives_per_image: int = 3, localization_weight: float = 1.0,
             classification_weight: float = 1.0, hard_example_mining: bool = True,
             num_hard_examples: int | None = 3000) -> tuple[jnp.ndarray, dict]:
  """SSD loss of a batch.

  class_logits [B, N, K+1] (slot 0 = background), box_codes [B, N, 4] (ty, tx, th, tw),
  targets: `matching.assign` vmapped over the batch (fields [B, N] / [B, N, 4]).
  `hard_example_mining=False` sums the classification loss over every non-ignored anchor (TF
  without a miner). Returns (loss, metrics) with metrics "cls_loss" and "loc_loss" (normalised
  and weighted, as TF's Loss/classification_loss and Loss/localization_loss; loss is their
  sum), "num_positives" (matched anchors in the batch) and "num_negatives" (negatives kept).
  """
  if class_logits.ndim != 3 or box_codes.shape != class_logits.shape[:2] + (4,):
    raise ValueError(f"expected class_logits [B, N, K+1] and box_codes [B, N, 4], got "
                     f"{class_logits.shape} and {box_codes.shape}")
  positive = targets.positive
  negative = ~positive & ~targets.ignore
  cls = classification_losses(class_logits, targets.class_targets, classification)
  cls = jnp.where(targets.ignore, 0.0, cls)
  loc = jnp.where(positive, localization_losses(box_codes, targets.box_targets), 0.0)
  if hard_example_mining:
    selected, num_neg = mine(cls, positive, negative, negatives_per_positive=negatives_per_positive,
                             min_negatives_per_image=min_negatives_per_image,
                             num_hard_examples=num_hard_examples)
  else:
    selected, num_neg = positive | negative, negative.sum(-1)
  num_positives = positive.sum().astype(jnp.float32)
  normalizer = jnp.maximum(num_positives, 1.0)
  cls_loss = classification_weight * jnp.sum(jnp.where(selected, cls, 0.0)) / normalizer
  loc_loss = localization_weight * jnp.sum(jnp.where(selected, loc, 0.0)) / normalizer
  metrics = {"cls_loss": cls_loss, "loc_loss": loc_loss, "num_positives": num_positives,
             "num_negatives": num_neg.sum().astype(jnp.float32)}
  return cls_loss + loc_loss, metrics
