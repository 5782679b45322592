"""mnv2_jax.detection.matching: IoU and TF ArgMaxMatcher / target assigner semantics."""

import jax
import jax.numpy as jnp
import numpy as np

from mnv2_jax.detection import box_coding, matching

# Four anchors along x, each 0.2 wide and 0.2 high.
ANCHORS = np.array([[0.0, 0.0, 0.2, 0.2], [0.0, 0.2, 0.2, 0.4], [0.0, 0.4, 0.2, 0.6],
                    [0.0, 0.6, 0.2, 0.8]], np.float32)
# One compile per shape instead of one per eager op (keeps the module fast on 2 cores).
assign = jax.jit(matching.assign, static_argnames=(
    "matched_threshold", "unmatched_threshold", "force_match_for_each_row", "scale_factors"))


def test_iou_hand_values():
  a = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5]], np.float32)
  b = np.array([[0.0, 0.0, 0.5, 1.0], [2.0, 2.0, 3.0, 3.0], [0.25, 0.25, 0.75, 0.75]], np.float32)
  out = np.asarray(matching.iou(a, b))
  assert out.shape == (2, 3)
  np.testing.assert_allclose(out, [[0.5, 0.0, 0.25], [0.5, 0.0, 0.0625 / (0.25 + 0.25 - 0.0625)]],
                             rtol=1e-6)
  assert np.asarray(matching.iou(np.zeros((1, 4)), np.zeros((1, 4))))[0, 0] == 0.0  # no 0/0


def test_threshold_match_and_background():
  gt = np.array([[0.0, 0.0, 0.2, 0.22], [0.0, 0.6, 0.2, 0.8]], np.float32)
  t = assign(gt, np.array([4, 7]), ANCHORS)
  np.testing.assert_array_equal(t.class_targets, [5, 0, 0, 8])
  np.testing.assert_array_equal(t.positive, [True, False, False, True])
  assert not np.any(t.ignore)
  np.testing.assert_allclose(t.box_targets[0], box_coding.encode(gt[:1], ANCHORS[:1])[0],
                             atol=1e-6)
  np.testing.assert_allclose(t.box_targets[3], 0.0, atol=1e-5)  # identical box -> zero code
  np.testing.assert_array_equal(np.asarray(t.box_targets[1:3]), 0.0)


def test_forced_match_below_threshold():
  # IoU with anchor 1 is 0.1 / 0.3 = 1/3 < 0.5: only force_match_for_each_row matches it.
  gt = np.array([[0.0, 0.25, 0.2, 0.35]], np.float32)
  forced = assign(gt, np.array([2]), ANCHORS)
  np.testing.assert_array_equal(forced.class_targets, [0, 3, 0, 0])
  plain = assign(gt, np.array([2]), ANCHORS, force_match_for_each_row=False)
  np.testing.assert_array_equal(plain.class_targets, [0, 0, 0, 0])
  assert not np.any(plain.positive)


def test_forced_match_steals_and_ties_go_to_lowest_gt():
  # Overlapping anchors A0, A1 (+ a far one). On A1 GT0 has IoU 0.68 > GT1's 0.6, but A1 is
  # GT1's best anchor (vs 1/3 on A0), so the forced match gives A1 to GT1.
  anchors = np.array([[0.0, 0.0, 0.2, 0.2], [0.0, 0.05, 0.2, 0.25], [0.8, 0.8, 1.0, 1.0]],
                     np.float32)
  gt = np.array([[0.0, 0.0, 0.2, 0.22], [0.0, 0.1, 0.2, 0.3]], np.float32)
  np.testing.assert_allclose(matching.iou(gt, anchors)[:, 1], [0.68, 0.6], rtol=1e-5)
  t = assign(gt, np.array([0, 1]), anchors)
  np.testing.assert_array_equal(t.class_targets, [1, 2, 0])
  np.testing.assert_allclose(t.box_targets[1], box_coding.encode(gt[1:], anchors[1:2])[0],
                             atol=1e-6)
  plain = assign(gt, np.array([0, 1]), anchors, force_match_for_each_row=False)
  np.testing.assert_array_equal(plain.class_targets, [1, 1, 0])
  # two identical GTs: both claim anchor 2, the lower index wins.
  gt = np.array([[0.0, 0.4, 0.2, 0.6], [0.0, 0.4, 0.2, 0.6]], np.float32)
  t = assign(gt, np.array([3, 5]), ANCHORS)
  np.testing.assert_array_equal(t.class_targets, [0, 0, 4, 0])


def test_ignore_between_thresholds():
  gt = np.array([[0.0, 0.0, 0.2, 0.3]], np.float32)  # IoU 2/3 with anchor 0, 1/4 with anchor 1
  t = assign(gt, np.array([0]), ANCHORS, matched_threshold=0.7, unmatched_threshold=0.2,
                      force_match_for_each_row=False)
  np.testing.assert_array_equal(t.ignore, [True, True, False, False])
  np.testing.assert_array_equal(t.positive, [False] * 4)
  np.testing.assert_array_equal(t.class_targets, [0] * 4)


def test_padding_never_matches():
  # the padded row sits exactly on anchor 2; it must not match, not even by forcing.
  gt = np.array([[0.0, 0.0, 0.2, 0.2], [0.0, 0.4, 0.2, 0.6], [0, 0, 0, 0]], np.float32)
  t = assign(gt, np.array([1, -1, -1]), ANCHORS)
  np.testing.assert_array_equal(t.class_targets, [2, 0, 0, 0])
  only_padding = assign(gt, np.array([-1, -1, -1]), ANCHORS)
  assert not np.any(only_padding.positive)
  np.testing.assert_array_equal(only_padding.class_targets, 0)
  np.testing.assert_array_equal(np.asarray(only_padding.box_targets), 0.0)


def test_vmap_jit_batch():
  gt = np.array([[[0.0, 0.0, 0.2, 0.2], [0, 0, 0, 0]],
                 [[0.0, 0.6, 0.2, 0.8], [0.0, 0.2, 0.2, 0.4]]], np.float32)
  cls = np.array([[0, -1], [1, 2]], np.int32)
  fn = jax.jit(lambda b, c: matching.assign_batch(b, c, jnp.asarray(ANCHORS)))
  t = fn(gt, cls)
  assert t.class_targets.shape == (2, 4) and t.box_targets.shape == (2, 4, 4)
  assert t.class_targets.dtype == jnp.int32 and t.positive.dtype == jnp.bool_
  np.testing.assert_array_equal(t.class_targets, [[1, 0, 0, 0], [0, 3, 0, 2]])
  for i in range(2):  # same as the per-image call
    single = assign(gt[i], cls[i], ANCHORS)
    np.testing.assert_array_equal(t.class_targets[i], single.class_targets)
