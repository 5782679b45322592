"""mnv2_jax.detection.box_coding: TF FasterRcnnBoxCoder with scale factors (10, 10, 5, 5)."""

import math

import numpy as np

from mnv2_jax.detection import box_coding

ANCHORS = np.array([[0.1, 0.2, 0.5, 0.4], [0.0, 0.0, 1.0, 1.0], [0.3, 0.3, 0.35, 0.45]],
                   np.float32)


def test_hand_value():
  # anchor centre (0.3, 0.3), size (0.4, 0.2); box centre (0.35, 0.25), size (0.2, 0.4)
  box = np.array([[0.25, 0.05, 0.45, 0.45]], np.float32)
  code = np.asarray(box_coding.encode(box, ANCHORS[:1]))
  expected = [10 * 0.05 / 0.4, 10 * -0.05 / 0.2, 5 * math.log(0.2 / 0.4), 5 * math.log(2.0)]
  np.testing.assert_allclose(code[0], expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(box_coding.decode(code, ANCHORS[:1])), box, atol=1e-6)


def test_roundtrip_batched():
  rng = np.random.default_rng(0)
  yx = rng.uniform(0, 0.6, size=(2, 3, 2))
  hw = rng.uniform(0.05, 0.4, size=(2, 3, 2))
  boxes = np.concatenate([yx, yx + hw], -1).astype(np.float32)
  codes = box_coding.encode(boxes, ANCHORS)
  assert codes.shape == (2, 3, 4)
  np.testing.assert_allclose(np.asarray(box_coding.decode(codes, ANCHORS)), boxes, atol=1e-5)


def test_scale_factors_and_identity():
  codes = np.asarray(box_coding.encode(ANCHORS, ANCHORS))
  np.testing.assert_allclose(codes, 0.0, atol=1e-5)
  box = np.array([[0.2, 0.2, 0.6, 0.6]], np.float32)
  scaled = np.asarray(box_coding.encode(box, ANCHORS[1:2]))
  plain = np.asarray(box_coding.encode(box, ANCHORS[1:2], scale_factors=None))
  np.testing.assert_allclose(scaled, plain * np.array([10, 10, 5, 5]), rtol=1e-5)


def test_zero_size_box_is_finite():
  # EPSILON on the box height / width: a degenerate box gives a large but finite code.
  box = np.array([[0.3, 0.3, 0.3, 0.3]], np.float32)
  code = np.asarray(box_coding.encode(box, ANCHORS[1:2]))
  assert np.all(np.isfinite(code)) and code[0, 2] < -50
