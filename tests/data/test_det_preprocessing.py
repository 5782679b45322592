"""det_preprocessing: the OD API box rules, flip, SSD crop + resize consistency, padding.

The consistency tests draw solid rectangles whose colour and mask label encode their class,
push them through the random train transform, and check that every output box still frames
its own rectangle: a wrong flip, crop offset or box re-framing moves the box off its pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mnv2_jax.data import det_preprocessing as dp

# (ymin, xmin, ymax, xmax) in pixels of an 80 x 120 image; class i has colour COLOURS[i].
RECTS = np.array([[4, 6, 40, 50], [30, 60, 76, 112], [50, 10, 70, 40]], np.float64)
COLOURS = np.array([[250, 10, 10], [10, 250, 10], [10, 10, 250]], np.uint8)
H, W = 80, 120


def _scene():
  image = np.full((H, W, 3), 128, np.uint8)
  seg = np.zeros((H, W, 1), np.uint8)
  for c, (y0, x0, y1, x1) in enumerate(RECTS.astype(int)):
    image[y0:y1, x0:x1] = COLOURS[c]
    seg[y0:y1, x0:x1] = c + 1
  boxes = (RECTS / [H, W, H, W]).astype(np.float32)
  return image, seg, boxes, np.arange(3, dtype=np.int32)


def test_det_augment_check_names_the_field():
  assert dp.DetAugment().check() == dp.DetAugment(320, 100, True, True)
  for kwargs, field in (({"resolution": 0}, "resolution"), ({"max_boxes": True}, "max_boxes"),
                        ({"random_flip": 1}, "random_flip"),
                        ({"ssd_random_crop": "yes"}, "ssd_random_crop")):
    with pytest.raises(ValueError, match=f"DetAugment.{field}="):
      dp.DetAugment(**kwargs).check()


def test_prune_to_window_is_the_od_api_ioa_rule():
  window = tf.constant([0.0, 0.0, 0.5, 0.5])
  boxes = tf.constant([[0.1, 0.1, 0.3, 0.3],     # inside
                       [0.1, 0.3, 0.3, 0.8],     # 40% of its area inside
                       [0.6, 0.6, 0.9, 0.9],     # outside
                       [0.1, 0.5, 0.3, 0.7],     # touches the window edge only
                       [0.2, 0.2, 0.2, 0.4]])    # zero area, inside
  expected = {0.0: [1, 1, 0, 0, 1], 0.3: [1, 1, 0, 0, 0], 0.5: [1, 0, 0, 0, 0],
              1.0: [1, 0, 0, 0, 0]}
  for thresh, keep in expected.items():
    got, framed = dp.prune_to_window(boxes, window, thresh)
    np.testing.assert_array_equal(got.numpy(), np.array(keep, bool), err_msg=str(thresh))
  np.testing.assert_allclose(framed.numpy()[:2], [[0.2, 0.2, 0.6, 0.6], [0.2, 0.6, 0.6, 1.0]],
                             atol=1e-6)


def test_flip_mirrors_boxes_and_pixels():
  image, seg, boxes, _ = _scene()
  f_image, f_boxes, f_seg = dp.flip_left_right(image, tf.constant(boxes), seg)
  np.testing.assert_allclose(f_boxes.numpy()[:, [1, 3]], 1 - boxes[:, [3, 1]], atol=1e-6)
  np.testing.assert_array_equal(f_image.numpy(), image[:, ::-1])
  np.testing.assert_array_equal(f_seg.numpy(), seg[:, ::-1])


def _train_outputs(augment, seeds=64, crowd=None):
  image, seg, boxes, classes = _scene()

  def one(i):
    return dp.preprocess_for_train(image, boxes, classes, tf.stack([tf.constant(7, tf.int64), i]),
                                   augment, is_crowd=crowd, segmentation=seg)
  return list(tf.data.Dataset.range(seeds).map(one).as_numpy_iterator())


def test_train_boxes_stay_on_their_pixels_through_crop_flip_resize():
  s = 48
  outs = _train_outputs(dp.DetAugment(resolution=s, max_boxes=5))
  uncropped = 0
  for out in outs:
    assert out["image"].shape == (s, s, 3) and out["image"].dtype == np.uint8
    assert out["segmentation"].shape == (s, s) and out["boxes"].dtype == np.float32
    valid = out["classes"] >= 0
    assert valid.any() and not valid[valid.sum():].any()  # Padding only at the tail.
    assert np.all(out["boxes"][~valid] == 0)
    b = out["boxes"][valid]
    assert np.all((b >= 0) & (b <= 1)) and np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])
    for box, c in zip(b, out["classes"][valid]):
      y0, x0, y1, x1 = np.round(box * s).astype(int)
      ys, xs = np.nonzero(out["segmentation"][y0:y1, x0:x1] == c + 1)
      # The class's mask fills the box up to the 1-px nearest-neighbour rounding.
      assert abs(ys.min()) <= 1 and abs(xs.min()) <= 1, (box, c)
      assert abs(ys.max() + 1 - (y1 - y0)) <= 1 and abs(xs.max() + 1 - (x1 - x0)) <= 1
      centre = out["image"][(y0 + y1) // 2, (x0 + x1) // 2].astype(int)
      assert np.abs(centre - COLOURS[c]).max() <= 2, (box, c, centre)
    uncropped += (valid.sum() == 3 and np.allclose(
        np.sort(b[:, 0]), np.sort(RECTS[:, 0] / H), atol=1e-6)
        and np.allclose(b[:, 2] - b[:, 0], (RECTS[:, 2] - RECTS[:, 0]) / H, atol=1e-6))
  # ~15% kept whole (random_coef) plus windows equal to the image; some crops happen too.
  assert 2 <= uncropped <= 40, uncropped


def test_train_drops_crowd_and_eval_keeps_it_flagged():
  crowd = np.array([False, True, False])
  outs = _train_outputs(dp.DetAugment(resolution=32, max_boxes=4), seeds=16, crowd=crowd)
  assert all(1 not in out["classes"] for out in outs)
  image, seg, boxes, classes = _scene()
  out = dp.preprocess_for_eval(image, boxes, classes, dp.DetAugment(resolution=32, max_boxes=4),
                               is_crowd=crowd, segmentation=seg)
  np.testing.assert_allclose(out["boxes"].numpy()[:3], boxes)
  np.testing.assert_array_equal(out["classes"].numpy(), [0, 1, 2, -1])
  np.testing.assert_array_equal(out["is_crowd"].numpy(), [False, True, False, False])
  assert (int(out["height"]), int(out["width"])) == (H, W)
  assert out["image"].shape == (32, 32, 3) and out["segmentation"].shape == (32, 32)


def test_no_augmentation_is_a_plain_resize_and_truncation_keeps_the_first_boxes():
  augment = dp.DetAugment(resolution=40, max_boxes=2, random_flip=False, ssd_random_crop=False)
  image, seg, boxes, classes = _scene()
  out = dp.preprocess_for_train(image, boxes, classes, tf.constant([1, 2], tf.int64), augment,
                                segmentation=seg)
  np.testing.assert_allclose(out["boxes"].numpy(), boxes[:2])
  np.testing.assert_array_equal(out["classes"].numpy(), [0, 1])
  np.testing.assert_array_equal(out["image"].numpy(), dp.resize(image, 40).numpy())
  # No boxes at all: the crop falls back to the whole image, everything is padding.
  empty = dp.preprocess_for_train(image, np.zeros((0, 4), np.float32), np.zeros(0, np.int32),
                                  tf.constant([3, 4], tf.int64), dp.DetAugment(resolution=16))
  assert np.all(empty["classes"].numpy() == -1) and empty["boxes"].shape == (100, 4)
