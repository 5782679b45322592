"""Anchor <-> ground-truth matching and SSD training targets (jnp, fixed shapes, jit-able).

Follows the TF Object Detection API as configured for SSDLite MobileNetV2
(`iou_similarity` + `argmax_matcher { matched_threshold: 0.5 unmatched_threshold: 0.5
negatives_lower_than_unmatched: true force_match_for_each_row: true }`, then
core/target_assigner.py with the `FasterRcnnBoxCoder`):
- IoU (`box_list_ops.iou`): intersection / union, 0 where the intersection is 0.
- ArgMaxMatcher (matchers/argmax_matcher.py): each anchor takes the GT of highest IoU
  (`argmax`, first index on ties); it is *negative* (background) if that IoU is
  < unmatched_threshold, *ignored* if unmatched_threshold <= IoU < matched_threshold, matched
  otherwise. With force_match_for_each_row every valid GT then claims its best anchor (argmax
  over anchors, first on ties), overriding the above; if several GTs claim the same anchor the
  lowest-index GT wins (TF's argmax over the one-hot column indicators).
- targets: matched anchors get class c + 1 (slot 0 is background: TF's `add_background_class`)
  and the encoded box of their GT; negatives get class 0; ignored anchors get class 0 and are
  flagged `ignore` (TF gives them class and box weight 0). Box targets are zeros wherever the
  anchor is not matched (TF's default regression target).
Deviation, for fixed shapes: TF strips padded GTs (`unpad_groundtruth_tensors`) and matches a
variable number per image; here GTs are padded to a fixed G with class -1, and padded rows get
IoU -1 with every anchor and are excluded from the forced matching, so they never match (an
image with only padding is all background, like TF's empty-rows case).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mnv2_jax.detection import box_coding


class Targets(NamedTuple):
  """Per-anchor training targets (a pytree; batch them with jax.vmap -> leading [B])."""
  class_targets: jnp.ndarray  # [N] int32: 0 = background, c + 1 for object class c
  box_targets: jnp.ndarray  # [N, 4] float32 encoded codes, zeros where not positive
  positive: jnp.ndarray  # [N] bool: matched to a GT
  ignore: jnp.ndarray  # [N] bool: IoU between the thresholds, no loss at all


def iou(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """Pairwise IoU of corner boxes a [N, 4] and b [M, 4] -> [N, M] (0 where no overlap)."""
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  ay0, ax0, ay1, ax1 = [a[:, i:i + 1] for i in range(4)]  # [N, 1]
  by0, bx0, by1, bx1 = [b[None, :, i] for i in range(4)]  # [1, M]
  ih = jnp.maximum(jnp.minimum(ay1, by1) - jnp.maximum(ay0, by0), 0.0)
  iw = jnp.maximum(jnp.minimum(ax1, bx1) - jnp.maximum(ax0, bx0), 0.0)
  inter = ih * iw
  union = (ay1 - ay0) * (ax1 - ax0) + (by1 - by0) * (bx1 - bx0) - inter
  return jnp.where(inter > 0, inter / jnp.where(inter > 0, union, 1.0), 0.0)


def argmax_match(similarity: jnp.ndarray, valid_rows: jnp.ndarray, *,
                 matched_threshold: float = 0.5, unmatched_threshold: float = 0.5,
                 force_match_for_each_row: bool = True) -> jnp.ndarray:
  """TF ArgMaxMatcher (negatives_lower_than_unmatched=True) on similarity [G, N].

  Returns matches [N] int32: the matched row (GT index) >= 0, -1 for negatives, -2 for ignored.
  Invalid rows (`valid_rows` [G] False) never match.
  """
  if unmatched_threshold > matched_threshold:
    raise ValueError(f"unmatched_threshold ({unmatched_threshold}) must be <= "
                     f"matched_threshold ({matched_threshold})")
  num_rows, num_cols = similarity.shape
  if num_rows == 0:
    return -jnp.ones((num_cols,), jnp.int32)
  sim = jnp.where(valid_rows[:, None], similarity, -1.0)
  matches = jnp.argmax(sim, axis=0).astype(jnp.int32)
  best = jnp.max(sim, axis=0)
  matches = jnp.where(best < unmatched_threshold, -1, matches)
  between = (best >= unmatched_threshold) & (best < matched_threshold)
  matches = jnp.where(between, -2, matches)
  if force_match_for_each_row:
    best_col = jnp.argmax(sim, axis=1)  # [G]: each GT's best anchor
    claims = jax.nn.one_hot(best_col, num_cols, dtype=jnp.int32) * valid_rows[:, None]  # [G, N]
    claimed = jnp.max(claims, axis=0) > 0
    claimant = jnp.argmax(claims, axis=0).astype(jnp.int32)  # lowest GT index wins
    matches = jnp.where(claimed, claimant, matches)
  return matches


def assign(gt_boxes: jnp.ndarray, gt_classes: jnp.ndarray, anchors: jnp.ndarray, *,
           matched_threshold: float = 0.5, unmatched_threshold: float = 0.5,
           force_match_for_each_row: bool = True,
           scale_factors=box_coding.SCALE_FACTORS) -> Targets:
  """SSD targets of one image.

  gt_boxes [G, 4] normalised corner boxes, gt_classes [G] int32 object classes 0..K-1 with -1
  marking padding, anchors [N, 4] (`anchors.generate`). vmap over a batch of (gt_boxes,
  gt_classes) with `in_axes=(0, 0, None)`.
  """
  gt_boxes = jnp.asarray(gt_boxes, jnp.float32)
  gt_classes = jnp.asarray(gt_classes, jnp.int32)
  anchors = jnp.asarray(anchors, jnp.float32)
  valid = gt_classes >= 0
  matches = argmax_match(iou(gt_boxes, anchors), valid, matched_threshold=matched_threshold,
                         unmatched_threshold=unmatched_threshold,
                         force_match_for_each_row=force_match_for_each_row)
  positive = matches >= 0
  ignore = matches == -2
  index = jnp.maximum(matches, 0)
  if gt_boxes.shape[0] == 0:
    class_targets = jnp.zeros(anchors.shape[0], jnp.int32)
    box_targets = jnp.zeros(anchors.shape, jnp.float32)
  else:
    class_targets = jnp.where(positive, gt_classes[index] + 1, 0).astype(jnp.int32)
    codes = box_coding.encode(gt_boxes[index], anchors, scale_factors)
    box_targets = jnp.where(positive[:, None], codes, 0.0).astype(jnp.float32)
  return Targets(class_targets=class_targets, box_targets=box_targets, positive=positive,
                 ignore=ignore)


def assign_batch(gt_boxes: jnp.ndarray, gt_classes: jnp.ndarray, anchors: jnp.ndarray,
                 **kwargs) -> Targets:
  """`assign` vmapped over a batch: gt_boxes [B, G, 4], gt_classes [B, G] -> Targets [B, ...]."""
  return jax.vmap(lambda b, c: assign(b, c, anchors, **kwargs))(gt_boxes, gt_classes)
