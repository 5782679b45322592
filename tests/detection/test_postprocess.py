"""mnv2_jax.detection.postprocess: score conversion, decoding, clipping, NMS via TensorFlow."""

import numpy as np
import pytest

from mnv2_jax.detection import box_coding, postprocess

# anchors 0 and 1 overlap (IoU 0.82), anchor 2 is apart and sticks out of the image.
ANCHORS = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.12, 0.52, 0.52], [0.7, 0.7, 1.1, 1.05]],
                   np.float32)
OFF = -30.0  # sigmoid(-30) ~ 1e-13 < score_threshold 1e-8


def _logits(entries, num_slots=4):
  """entries: {(anchor, slot): logit}; one image."""
  logits = np.full((1, len(ANCHORS), num_slots), OFF, np.float32)
  for (a, s), v in entries.items():
    logits[0, a, s] = v
  return logits


def test_same_class_overlap_suppressed():
  logits = _logits({(0, 1): 3.0, (1, 1): 2.0})  # slot 1 = object class 0
  out = postprocess.detect(logits, np.zeros((1, 3, 4), np.float32), ANCHORS)
  assert len(out) == 1
  det = out[0]
  np.testing.assert_array_equal(det["classes"], [0])
  np.testing.assert_allclose(det["scores"], [1 / (1 + np.exp(-3.0))], rtol=1e-5)
  np.testing.assert_allclose(det["boxes"], ANCHORS[:1], atol=1e-6)


def test_different_classes_both_kept_and_background_dropped():
  logits = _logits({(0, 1): 3.0, (1, 3): 2.0, (2, 0): 10.0})  # anchor 2: background only
  det = postprocess.detect(logits, np.zeros((1, 3, 4), np.float32), ANCHORS)[0]
  np.testing.assert_array_equal(det["classes"], [0, 2])
  assert det["scores"][0] > det["scores"][1]
  assert det["classes"].dtype == np.int32


def test_decoding_and_clipping():
  codes = np.zeros((1, 3, 4), np.float32)
  target = np.array([[0.7, 0.75, 0.9, 0.95]], np.float32)
  codes[0, 2] = np.asarray(box_coding.encode(target, ANCHORS[2:3]))[0]
  det = postprocess.detect(_logits({(2, 2): 1.0}), codes, ANCHORS)[0]
  np.testing.assert_allclose(det["boxes"], target, atol=1e-5)
  # undecoded anchor 2 extends past 1.0: clipped to the image window
  det = postprocess.detect(_logits({(2, 2): 1.0}), np.zeros_like(codes), ANCHORS)[0]
  np.testing.assert_allclose(det["boxes"], [[0.7, 0.7, 1.0, 1.0]], atol=1e-6)


def test_batch_softmax_and_limits():
  # image 1: background logit 4 next to the object logit 5 -> softmax score e / (e + 1)
  logits = np.concatenate([_logits({(0, 1): 5.0}),
                           _logits({(0, 2): 5.0, (0, 0): 4.0, (2, 3): 5.0, (2, 0): 4.0})])
  codes = np.zeros((2, 3, 4), np.float32)
  out = postprocess.detect(logits, codes, ANCHORS, score_fn="softmax", score_threshold=0.5)
  assert [d["classes"].tolist() for d in out] == [[0], [1, 2]]
  np.testing.assert_allclose(out[1]["scores"], [np.e / (np.e + 1)] * 2, rtol=1e-5)
  sig = postprocess.detect(logits, codes, ANCHORS, score_threshold=0.5)  # sigmoid: no coupling
  np.testing.assert_allclose(sig[1]["scores"], [1 / (1 + np.exp(-5.0))] * 2, rtol=1e-5)
  limited = postprocess.detect(logits, codes, ANCHORS, score_fn="softmax", max_total=1)
  assert [len(d["scores"]) for d in limited] == [1, 1]
  none = postprocess.detect(np.full((1, 3, 4), OFF, np.float32), codes[:1], ANCHORS)[0]
  assert none["boxes"].shape == (0, 4) and none["scores"].shape == (0,)


def test_shape_errors():
  with pytest.raises(ValueError, match="anchors"):
    postprocess.detect(np.zeros((1, 2, 4)), np.zeros((1, 2, 4)), ANCHORS)
  with pytest.raises(ValueError, match="score_fn"):
    postprocess.detect(np.zeros((1, 3, 4)), np.zeros((1, 3, 4)), ANCHORS, score_fn="tanh")
