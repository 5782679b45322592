"""Host-side SSD post-processing: scores, box decoding, clipping, multi-class NMS (numpy).

Follows the TF Object Detection API's `SSDMetaArch.postprocess` with the SSDLite config's
`post_processing { batch_non_max_suppression { score_threshold: 1e-8 iou_threshold: 0.6
max_detections_per_class: 100 max_total_detections: 100 } score_converter: SIGMOID }`:
1. scores: sigmoid (or softmax) over the K + 1 logits, then the background slot 0 is dropped
   (TF slices it off after the score converter), giving K object-class scores per anchor.
2. boxes: `FasterRcnnBoxCoder` decode against the anchors, clipped to the image window
   [0, 1] before NMS (TF's `clip_window` = the true image in normalised coordinates; boxes
   that are empty after clipping are dropped, as TF's `filter_nonoverlapping` does).
3. per-class NMS keeping `max_per_class`, then the best `max_total` over classes:
   `tf.image.combined_non_max_suppression` (one box per anchor shared by all classes, q = 1),
   which implements the same per-class-then-merge selection as TF's
   `batch_multiclass_non_max_suppression`.
NMS runs in TensorFlow (a dependency of the repo, imported lazily here) rather than being
re-implemented; box decoding uses numpy (the same formulas as `box_coding.decode`).
"""

from __future__ import annotations

import numpy as np

from mnv2_jax.detection import box_coding

SCORE_FNS = ("sigmoid", "softmax")


def scores_from_logits(class_logits: np.ndarray, score_fn: str = "sigmoid") -> np.ndarray:
  """[..., N, K+1] logits -> [..., N, K] object-class scores (background slot dropped)."""
  logits = np.asarray(class_logits, np.float32)
  if score_fn == "sigmoid":
    probs = 1.0 / (1.0 + np.exp(-logits))
  elif score_fn == "softmax":
    e = np.exp(logits - logits.max(-1, keepdims=True))
    probs = e / e.sum(-1, keepdims=True)
  else:
    raise ValueError(f"score_fn must be one of {SCORE_FNS}, got {score_fn!r}")
  return probs[..., 1:]


def decode_boxes(box_codes: np.ndarray, anchors: np.ndarray,
                 scale_factors=box_coding.SCALE_FACTORS) -> np.ndarray:
  """numpy `FasterRcnnBoxCoder` decode: codes [..., N, 4] -> corner boxes [..., N, 4]."""
  codes = np.asarray(box_codes, np.float32)
  anchors = np.asarray(anchors, np.float32)
  ha = anchors[:, 2] - anchors[:, 0]
  wa = anchors[:, 3] - anchors[:, 1]
  yc_a = anchors[:, 0] + 0.5 * ha
  xc_a = anchors[:, 1] + 0.5 * wa
  sy, sx, sh, sw = scale_factors
  ty, tx, th, tw = codes[..., 0] / sy, codes[..., 1] / sx, codes[..., 2] / sh, codes[..., 3] / sw
  h = np.exp(th) * ha
  w = np.exp(tw) * wa
  yc = ty * ha + yc_a
  xc = tx * wa + xc_a
  return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)


def detect(class_logits: np.ndarray, box_codes: np.ndarray, anchors: np.ndarray, *,
           score_fn: str = "sigmoid", score_threshold: float = 1e-8, iou_threshold: float = 0.6,
           max_per_class: int = 100, max_total: int = 100) -> list[dict[str, np.ndarray]]:
  """Final detections of a batch.

  class_logits [B, N, K+1], box_codes [B, N, 4], anchors [N, 4]. Returns one dict per image
  with "boxes" [D, 4] normalised corner (ymin, xmin, ymax, xmax) in [0, 1], "scores" [D]
  (descending) and "classes" [D] int32 object classes 0..K-1, D <= max_total.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top (heavy; host side only)

  class_logits = np.asarray(class_logits)
  box_codes = np.asarray(box_codes)
  if class_logits.ndim != 3 or box_codes.shape != class_logits.shape[:2] + (4,):
    raise ValueError(f"expected class_logits [B, N, K+1] and box_codes [B, N, 4], got "
                     f"{class_logits.shape} and {box_codes.shape}")
  if class_logits.shape[1] != len(anchors):
    raise ValueError(f"{class_logits.shape[1]} predictions per image but {len(anchors)} anchors")
  scores = scores_from_logits(class_logits, score_fn)  # [B, N, K]
  boxes = np.clip(decode_boxes(box_codes, anchors), 0.0, 1.0)
  empty = (boxes[..., 2] <= boxes[..., 0]) | (boxes[..., 3] <= boxes[..., 1])  # [B, N]
  scores = np.where(empty[..., None], 0.0, scores).astype(np.float32)
  out = tf.image.combined_non_max_suppression(
      boxes[:, :, None, :].astype(np.float32), scores, max_output_size_per_class=max_per_class,
      max_total_size=max_total, iou_threshold=iou_threshold, score_threshold=score_threshold,
      pad_per_class=False, clip_boxes=False)
  nms_boxes, nms_scores, nms_classes, valid = (np.asarray(t) for t in out)
  results = []
  for b in range(class_logits.shape[0]):
    d = int(valid[b])
    keep_boxes, keep_scores = nms_boxes[b, :d], nms_scores[b, :d]
    nonempty = ((keep_boxes[:, 2] > keep_boxes[:, 0]) & (keep_boxes[:, 3] > keep_boxes[:, 1])
                & (keep_scores > 0))
    results.append({"boxes": keep_boxes[nonempty].astype(np.float32),
                    "scores": keep_scores[nonempty].astype(np.float32),
                    "classes": nms_classes[b, :d][nonempty].astype(np.int32)})
  return results
