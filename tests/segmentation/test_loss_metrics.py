"""mnv2_jax.segmentation: pixel cross-entropy, logit upsampling, confusion matrix, mIoU.

Expected values are computed by hand (or by numpy from the definition) on tiny arrays; the two
upsampling conventions are compared with TensorFlow's own kernels (TF1 align_corners=True,
TF2 half-pixel), which are what DeepLab and `tf.image.resize` run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnv2_jax.segmentation import loss as loss_lib
from mnv2_jax.segmentation import metrics


def _log_softmax(x):
  x = np.asarray(x, np.float64)
  return x - (np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))
              + x.max(-1, keepdims=True))


def test_cross_entropy_is_the_mean_over_valid_pixels_of_the_batch():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 2, 3, 4)).astype(np.float32)
  # Image 0 has 5 valid pixels, image 1 has 2: a mean of per-image means would differ.
  labels = np.array([[[0, 1, 2], [3, 255, 1]],
                     [[255, 255, 2], [255, 0, 255]]], np.int32)
  loss, num_valid = loss_lib.pixel_cross_entropy(logits, labels)
  logp = _log_softmax(logits)
  terms = [-logp[b, h, w, labels[b, h, w]] for b, h, w in np.argwhere(labels != 255)]
  assert int(num_valid) == 7
  np.testing.assert_allclose(float(loss), np.mean(terms), rtol=1e-6)
  per_image = [np.mean(terms[:5]), np.mean(terms[5:])]
  assert abs(float(loss) - np.mean(per_image)) > 1e-3  # The test can tell the two apart.


def test_ignored_pixels_have_no_loss_and_no_gradient():
  rng = np.random.default_rng(1)
  logits = jnp.asarray(rng.normal(size=(1, 2, 2, 3)), jnp.float32)
  labels = jnp.asarray([[[0, 255], [2, 3]]])  # 3 is outside [0, 3): ignored as well.
  grad = jax.grad(lambda x: loss_lib.pixel_cross_entropy(x, labels)[0])(logits)
  assert np.all(np.asarray(grad)[0, 0, 1] == 0) and np.all(np.asarray(grad)[0, 1, 1] == 0)
  assert np.any(np.asarray(grad)[0, 0, 0] != 0)
  changed = logits.at[0, 0, 1].set(100.0).at[0, 1, 1].set(-50.0)
  assert float(loss_lib.pixel_cross_entropy(changed, labels)[0]) == pytest.approx(
      float(loss_lib.pixel_cross_entropy(logits, labels)[0]), rel=1e-6)
  assert int(loss_lib.pixel_cross_entropy(logits, labels)[1]) == 2


def test_all_ignored_is_zero_with_finite_gradient_and_jits():
  logits = jnp.ones((1, 2, 2, 21), jnp.bfloat16)
  labels = jnp.full((1, 2, 2), 255, jnp.uint8)
  fn = jax.jit(lambda x, y: loss_lib.pixel_cross_entropy(x, y))
  loss, num_valid = fn(logits, labels)
  assert float(loss) == 0.0 and int(num_valid) == 0 and loss.dtype == jnp.float32
  grad = jax.grad(lambda x: fn(x, labels)[0])(logits.astype(jnp.float32))
  assert np.all(np.isfinite(np.asarray(grad)))


def test_cross_entropy_rejects_a_resolution_mismatch():
  with pytest.raises(ValueError, match="upsample_logits"):
    loss_lib.pixel_cross_entropy(jnp.zeros((1, 3, 3, 21)), jnp.zeros((1, 5, 5), jnp.int32))


def test_upsample_matches_tensorflow_for_both_conventions():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
  for size in ((17, 13), (5, 4), (9, 1), (1, 7)):
    tf1 = tf.raw_ops.ResizeBilinear(images=logits, size=size, align_corners=True,
                                    half_pixel_centers=False).numpy()
    np.testing.assert_allclose(
        loss_lib.upsample_logits(logits, size, align_corners=True), tf1, atol=1e-5)
    tf2 = tf.image.resize(logits, size, method="bilinear", antialias=False).numpy()
    np.testing.assert_allclose(loss_lib.upsample_logits(logits, size), tf2, atol=1e-5)
  # The two conventions really differ (so the choice matters), and corners coincide only
  # with align_corners=True.
  up_ac = np.asarray(loss_lib.upsample_logits(logits, (17, 13), align_corners=True))
  up_hp = np.asarray(loss_lib.upsample_logits(logits, (17, 13)))
  assert np.abs(up_ac - up_hp).max() > 0.05
  np.testing.assert_allclose(up_ac[:, -1, -1], logits[:, -1, -1], atol=1e-6)
  # An input side of 1 is broadcast.
  one = rng.normal(size=(1, 1, 3, 2)).astype(np.float32)
  np.testing.assert_allclose(loss_lib.upsample_logits(one, (4, 5), align_corners=True),
                             tf.raw_ops.ResizeBilinear(images=one, size=(4, 5),
                                                       align_corners=True).numpy(), atol=1e-6)


def test_upsample_align_corners_by_hand():
  x = jnp.asarray([[0.0, 4.0]]).reshape(1, 1, 2, 1)
  got = loss_lib.upsample_logits(x, (1, 5), align_corners=True)
  np.testing.assert_allclose(np.asarray(got).reshape(-1), [0.0, 1.0, 2.0, 3.0, 4.0], atol=1e-6)


# Hand-worked example, C = 4 (class 3 is absent from ground truth and predictions):
#   labels       [[0, 0, 1, 255], [2, 1, 1, 0]]
#   predictions  [[0, 1, 1, 2  ], [2, 2, 1, 0]]
# Counted pairs (true, pred): (0,0) x2, (0,1), (1,1) x2, (1,2), (2,2); the 255 pixel is dropped.
LABELS = np.array([[0, 0, 1, 255], [2, 1, 1, 0]])
PREDS = np.array([[0, 1, 1, 2], [2, 2, 1, 0]])
EXPECTED = np.array([[2, 1, 0, 0],
                     [0, 2, 1, 0],
                     [0, 0, 1, 0],
                     [0, 0, 0, 0]])


def test_confusion_matrix_by_hand_and_under_jit():
  got = metrics.confusion_matrix(PREDS, LABELS, 4)
  assert got.dtype == jnp.int32 and got.shape == (4, 4)
  np.testing.assert_array_equal(got, EXPECTED)
  jitted = jax.jit(metrics.confusion_matrix, static_argnums=2)
  np.testing.assert_array_equal(jitted(PREDS[None], LABELS[None], 4), EXPECTED)
  # Accumulating per-row (per-batch) matrices gives the whole-set matrix.
  rows = sum(np.asarray(jitted(PREDS[i], LABELS[i], 4), np.int64) for i in range(2))
  np.testing.assert_array_equal(rows, EXPECTED)


def test_confusion_matrix_drops_out_of_range_labels_and_predictions():
  labels = np.array([0, 7, 1, -1, 1, 200])
  preds = np.array([0, 0, -3, 1, 1, 1])
  got = metrics.confusion_matrix(preds, labels, 4, ignore_label=200)
  np.testing.assert_array_equal(got, np.diag([1, 1, 0, 0]))
  with pytest.raises(ValueError, match="differ"):
    metrics.confusion_matrix(preds[:2], labels, 4)


def test_miou_and_pixel_accuracy_by_hand():
  mean, per_class = metrics.miou(EXPECTED)
  # IoU_0 = 2 / (3 + 2 - 2), IoU_1 = 2 / (3 + 3 - 2), IoU_2 = 1 / (1 + 2 - 1); class 3 absent.
  np.testing.assert_allclose(per_class[:3], [2 / 3, 1 / 2, 1 / 2])
  assert np.isnan(per_class[3])
  assert mean == pytest.approx((2 / 3 + 1 / 2 + 1 / 2) / 3)  # 5/9, not (...)/4.
  assert metrics.pixel_accuracy(EXPECTED) == pytest.approx(5 / 7)


def test_a_class_only_predicted_counts_with_iou_zero():
  confusion = np.array([[5, 1], [0, 0]])  # Class 1 predicted once, never in ground truth.
  mean, per_class = metrics.miou(confusion)
  np.testing.assert_allclose(per_class, [5 / 6, 0.0])
  assert mean == pytest.approx(5 / 12)


def test_empty_and_malformed_matrices():
  mean, per_class = metrics.miou(np.zeros((3, 3), np.int64))
  assert mean == 0.0 and np.isnan(per_class).all()
  assert metrics.pixel_accuracy(np.zeros((3, 3))) == 0.0
  with pytest.raises(ValueError, match="square"):
    metrics.miou(np.zeros((2, 3)))
  with pytest.raises(ValueError, match="negative"):
    metrics.pixel_accuracy(-np.eye(2))
