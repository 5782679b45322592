"""Tests for mnv2_jax.losses against TF's slim-era loss and in_top_k."""

import jax.numpy as jnp
import numpy as np
import pytest

from mnv2_jax import losses

NUM_CLASSES = 11


def _batch(seed=0, n=16, scale=3.0):
  rng = np.random.default_rng(seed)
  logits = (scale * rng.standard_normal((n, NUM_CLASSES))).astype(np.float32)
  labels = rng.integers(0, NUM_CLASSES, n)
  return logits, labels


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("use_mask", [False, True])
def test_cross_entropy_matches_tf_softmax_cross_entropy(smoothing, use_mask):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  logits, labels = _batch()
  mask = (np.arange(len(labels)) % 3 != 0).astype(np.float32)
  expected = tf.compat.v1.losses.softmax_cross_entropy(
      tf.one_hot(labels, NUM_CLASSES), logits,
      weights=mask if use_mask else 1.0, label_smoothing=smoothing).numpy()
  got = losses.cross_entropy(
      jnp.asarray(logits), jnp.asarray(labels), num_classes=NUM_CLASSES,
      label_smoothing=smoothing, mask=jnp.asarray(mask) if use_mask else None)
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_smoothing_convention_is_slim():
  """Uniform share a/K goes to every class, the true one included."""
  logits = np.log(np.array([[0.5, 0.25, 0.25]], np.float32))
  a = 0.3
  expected = -((1 - a + a / 3) * np.log(0.5) + 2 * (a / 3) * np.log(0.25))
  got = losses.cross_entropy(jnp.asarray(logits), jnp.array([0]),
                             num_classes=3, label_smoothing=a)
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_mask_excludes_padding_and_empty_mask_is_zero():
  logits, labels = _batch()
  full = losses.cross_entropy(jnp.asarray(logits[:4]), jnp.asarray(labels[:4]),
                              num_classes=NUM_CLASSES, label_smoothing=0.1)
  padded_logits = np.concatenate([logits[:4], 100 * logits[4:8]])
  mask = jnp.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
  masked = losses.cross_entropy(jnp.asarray(padded_logits),
                                jnp.asarray(labels[:8]),
                                num_classes=NUM_CLASSES, label_smoothing=0.1,
                                mask=mask)
  np.testing.assert_allclose(masked, full, rtol=1e-6)
  empty = losses.cross_entropy(jnp.asarray(logits), jnp.asarray(labels),
                               num_classes=NUM_CLASSES, label_smoothing=0.1,
                               mask=jnp.zeros(len(labels)))
  assert float(empty) == 0.0


def test_bf16_logits_computed_in_float32():
  logits, labels = _batch()
  ref = losses.cross_entropy(jnp.asarray(logits, jnp.bfloat16).astype(
      jnp.float32), jnp.asarray(labels), num_classes=NUM_CLASSES,
                             label_smoothing=0.1)
  got = losses.cross_entropy(jnp.asarray(logits, jnp.bfloat16),
                             jnp.asarray(labels), num_classes=NUM_CLASSES,
                             label_smoothing=0.1)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_num_classes_mismatch_raises():
  logits, labels = _batch()
  with pytest.raises(ValueError, match="num_classes"):
    losses.cross_entropy(jnp.asarray(logits), jnp.asarray(labels),
                         num_classes=NUM_CLASSES + 1, label_smoothing=0.1)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_topk_correct_matches_tf_in_top_k_with_ties(k):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  # Small integer logits: many ties straddle the top-k boundary.
  logits = rng.integers(0, 4, (64, NUM_CLASSES)).astype(np.float32)
  logits[0, 3] = np.nan
  logits[1, 0] = np.inf
  labels = rng.integers(0, NUM_CLASSES, 64)
  expected = tf.math.in_top_k(labels, logits, k).numpy()
  got = losses.topk_correct(jnp.asarray(logits), jnp.asarray(labels), k)
  assert got.dtype == jnp.bool_
  np.testing.assert_array_equal(got, expected)
  assert 0 < expected.sum() < len(expected)


def test_topk_correct_simple():
  logits = jnp.array([[0.1, 0.9, 0.0], [0.5, 0.2, 0.3], [0.2, 0.2, 0.6]])
  labels = jnp.array([1, 2, 0])
  np.testing.assert_array_equal(losses.topk_correct(logits, labels, 1),
                                [True, False, False])
  np.testing.assert_array_equal(losses.topk_correct(logits, labels, 2),
                                [True, True, True])
  np.testing.assert_array_equal(
      losses.topk_correct(logits, jnp.array([3, -1, 0]), 3),
      [False, False, True])
