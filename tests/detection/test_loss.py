"""mnv2_jax.detection.loss: SSD loss, hard-example mining counts, normalisation, gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnv2_jax.detection import loss as loss_lib
from mnv2_jax.detection.matching import Targets

B, N, C = 2, 20, 4  # 3 object classes + background


def _targets(positives, ignore=()):
  """positives: {(b, n): class_target}; ignore: [(b, n)]."""
  cls = np.zeros((B, N), np.int32)
  pos = np.zeros((B, N), bool)
  ign = np.zeros((B, N), bool)
  box = np.zeros((B, N, 4), np.float32)
  for (b, n), c in positives.items():
    cls[b, n], pos[b, n] = c, True
    box[b, n] = [0.5, -0.5, 0.2, 0.1]
  for b, n in ignore:
    ign[b, n] = True
  return Targets(jnp.asarray(cls), jnp.asarray(box), jnp.asarray(pos), jnp.asarray(ign))


def _perfect(targets, margin=20.0):
  onehot = jax.nn.one_hot(targets.class_targets, C)
  return margin * (2 * onehot - 1), targets.box_targets


@pytest.mark.parametrize("classification", ["sigmoid", "softmax"])
def test_perfect_is_near_zero_and_wrong_is_higher(classification):
  t = _targets({(0, 3): 2, (1, 7): 1})
  logits, codes = _perfect(t)
  good, m = loss_lib.ssd_loss(logits, codes, t, classification=classification)
  assert float(good) < 1e-6 and float(m["num_positives"]) == 2
  bad, m_bad = loss_lib.ssd_loss(-logits, codes + 1.0, t, classification=classification)
  assert float(bad) > 10.0
  assert float(m_bad["loc_loss"]) > 0 and float(m_bad["cls_loss"]) > 0
  np.testing.assert_allclose(float(bad), float(m_bad["cls_loss"] + m_bad["loc_loss"]), rtol=1e-6)


def test_hand_values_both_modes():
  # all-zero logits: per anchor sigmoid CE = (K+1) log 2, softmax CE = log(K+1).
  t = _targets({(0, 0): 1})
  zeros = jnp.zeros((B, N, C))
  codes = t.box_targets + 0.5  # huber(0.5) = 0.125 per code -> 0.5 on the positive
  for mode, per in [("sigmoid", C * math.log(2)), ("softmax", math.log(C))]:
    total, m = loss_lib.ssd_loss(zeros, codes, t, classification=mode)
    # kept: 1 positive + max(3, 3*1) negatives in image 0, 3 negatives in image 1; 1 match.
    assert float(m["num_negatives"]) == 6
    np.testing.assert_allclose(float(m["cls_loss"]), 7 * per, rtol=1e-5)
    np.testing.assert_allclose(float(m["loc_loss"]), 0.5, rtol=1e-5)
  # huber beyond delta 1: |x| - 0.5 (smooth L1 convention)
  _, m = loss_lib.ssd_loss(zeros, t.box_targets + 3.0, t)
  np.testing.assert_allclose(float(m["loc_loss"]), 4 * 2.5, rtol=1e-5)


def test_mining_keeps_top_negatives_and_counts():
  rng = np.random.default_rng(0)
  t = _targets({(0, 0): 1, (0, 1): 2}, ignore=[(0, 2), (1, 5)])
  logits = jnp.asarray(rng.normal(size=(B, N, C)).astype(np.float32))
  total, m = loss_lib.ssd_loss(logits, t.box_targets, t, negatives_per_positive=3.0,
                               min_negatives_per_image=4)
  per = np.asarray(loss_lib.classification_losses(logits, t.class_targets))
  # image 0: 2 positives -> max(4, 6) = 6 negatives; image 1: no positive -> 4 negatives.
  assert float(m["num_negatives"]) == 10
  neg0 = np.sort(np.delete(per[0], [0, 1, 2]))[::-1][:6]  # ignored anchor 2 is no negative
  neg1 = np.sort(np.delete(per[1], [5]))[::-1][:4]
  expected = (per[0, 0] + per[0, 1] + neg0.sum() + neg1.sum()) / 2
  np.testing.assert_allclose(float(m["cls_loss"]), expected, rtol=1e-5)
  # without mining: every non-ignored anchor
  _, m_all = loss_lib.ssd_loss(logits, t.box_targets, t, hard_example_mining=False)
  expected_all = (per.sum() - per[0, 2] - per[1, 5]) / 2
  np.testing.assert_allclose(float(m_all["cls_loss"]), expected_all, rtol=1e-5)
  assert float(m_all["num_negatives"]) == 2 * N - 4


def test_ratio_truncates_and_num_hard_examples_cap():
  t = _targets({(0, 0): 1})
  logits = jnp.zeros((B, N, C))
  _, m = loss_lib.ssd_loss(logits, t.box_targets, t, negatives_per_positive=1.5,
                           min_negatives_per_image=0)
  assert float(m["num_negatives"]) == 1  # int(1.5 * 1) in image 0, 0 in image 1
  # a pool of 2 per image: image 0 keeps its (tied, lower-index first) positive + 1 negative.
  _, m = loss_lib.ssd_loss(logits, t.box_targets, t, num_hard_examples=2)
  assert float(m["num_negatives"]) == 3


def test_gradient_finite_and_only_on_selected():
  rng = np.random.default_rng(1)
  t = _targets({(0, 4): 3, (1, 9): 1})
  logits = jnp.asarray(rng.normal(size=(B, N, C)).astype(np.float32))
  codes = jnp.asarray(rng.normal(size=(B, N, 4)).astype(np.float32))
  fn = jax.jit(jax.grad(lambda l, c: loss_lib.ssd_loss(l, c, t, min_negatives_per_image=0)[0],
                        argnums=(0, 1)))
  g_logits, g_codes = fn(logits, codes)
  assert np.all(np.isfinite(g_logits)) and np.all(np.isfinite(g_codes))
  touched = np.abs(np.asarray(g_logits)).sum(-1) > 0
  assert touched.sum() == 2 + 2 * 3  # 2 positives, 3 mined negatives each
  assert touched[0, 4] and touched[1, 9]
  box_touched = np.abs(np.asarray(g_codes)).sum(-1) > 0
  np.testing.assert_array_equal(np.argwhere(box_touched), [[0, 4], [1, 9]])


def test_bad_mode_raises():
  t = _targets({})
  with pytest.raises(ValueError, match="classification"):
    loss_lib.ssd_loss(jnp.zeros((B, N, C)), jnp.zeros((B, N, 4)), t, classification="focal")
