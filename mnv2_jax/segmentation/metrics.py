"""Segmentation metrics: a jit-able confusion matrix and mIoU / pixel accuracy from it.

The paper's Table 7 number is PASCAL VOC 2012 val mIoU, computed by DeepLab's eval.py with
`tf.metrics.mean_iou(predictions, labels, 21, weights=labels != 255)`. That metric is a
streaming confusion matrix over *all* pixels of the split (not a mean of per-image IoUs), and
then, per class c,

  IoU_c = TP_c / (TP_c + FP_c + FN_c) = M[c, c] / (row_sum_c + col_sum_c - M[c, c]),

and mean IoU = the average of IoU_c over the classes whose denominator is non-zero, i.e. the
classes present in the ground truth or in the predictions (tf's `compute_mean_iou`:
`num_valid_entries = sum(denominator != 0)`; 0.0 if no class is present). A class absent from
both is excluded from the mean, not counted as IoU 0 or 1. This is also the official VOC devkit
rule on the full val set (there all 21 classes are present, so it is the plain mean of 21).
Ignored pixels (label 255) are in neither the rows nor the columns.

Layout: M[true, predicted] (rows = ground truth, columns = prediction, `tf.math.
confusion_matrix`'s convention). `confusion_matrix` runs on device inside the eval step and
returns a fixed [C, C] int32 matrix per batch; the host sums those in int64 (`miou` and
`pixel_accuracy` take the summed matrix). One call counts at most 2**31 - 1 pixels (about
8,000 images at 513 x 513), far more than an eval batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mnv2_jax.segmentation.loss import IGNORE_LABEL


def confusion_matrix(predictions: jax.Array, labels: jax.Array, num_classes: int, *,
                     ignore_label: int = IGNORE_LABEL) -> jax.Array:
  """Counts pixels into an int32 [C, C] matrix M[true, predicted].

  Args:
    predictions: integer class ids, any shape (usually argmax of the logits, [B, H, W]).
    labels: integer ground truth, the same shape.
    num_classes: C (static).
    ignore_label: pixels with this label are not counted. Pixels whose label or prediction
      lies outside [0, C) are not counted either (a prediction from an argmax over C logits is
      always inside; tf.metrics would reject such inputs instead).

  Jit-able: one `segment_sum` into C * C fixed bins, no data-dependent shapes.
  """
  predictions = jnp.asarray(predictions).astype(jnp.int32)
  labels = jnp.asarray(labels).astype(jnp.int32)
  if predictions.shape != labels.shape:
    raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} differ")
  valid = ((labels != ignore_label) & (labels >= 0) & (labels < num_classes)
           & (predictions >= 0) & (predictions < num_classes))
  bins = jnp.where(valid, labels * num_classes + predictions, 0).reshape(-1)
  counts = jax.ops.segment_sum(valid.reshape(-1).astype(jnp.int32), bins,
                               num_segments=num_classes * num_classes)
  return counts.reshape(num_classes, num_classes)


def _checked(confusion) -> np.ndarray:
  confusion = np.asarray(confusion, np.int64)
  if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
    raise ValueError(f"confusion matrix must be square [C, C], got {confusion.shape}")
  if (confusion < 0).any():
    raise ValueError("confusion matrix has negative counts")
  return confusion


def miou(confusion) -> tuple[float, np.ndarray]:
  """(mean IoU, per-class IoU [C]) of a summed confusion matrix (module docstring rule).

  Per-class entries are NaN for the classes absent from both ground truth and predictions;
  those are the classes left out of the mean. The mean is 0.0 when every class is absent
  (as tf.metrics.mean_iou returns).
  """
  confusion = _checked(confusion)
  true_positive = np.diag(confusion).astype(np.float64)
  union = confusion.sum(axis=0) + confusion.sum(axis=1) - np.diag(confusion)
  present = union > 0
  per_class = np.full(confusion.shape[0], np.nan)
  per_class[present] = true_positive[present] / union[present]
  mean = float(per_class[present].mean()) if present.any() else 0.0
  return mean, per_class


def pixel_accuracy(confusion) -> float:
  """Correctly labelled pixels / counted pixels (ignored pixels excluded); 0.0 if none."""
  confusion = _checked(confusion)
  total = confusion.sum()
  return float(np.trace(confusion) / total) if total else 0.0
