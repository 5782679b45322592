"""DeepLab segmentation augmentation (mnv2_jax/data/seg_preprocessing.py) on small tensors.

Checks: every invalid `SegAugment` field is named; the scale set and its truncating size rule;
align-corners scaling worked by hand; bottom/right padding with pad_value / ignore_label; output
shapes and label values (only input values plus 255); image and label cropped and flipped
together (the image encodes the label, so any mismatch shows); seeded determinism; eval padding
and its too-large error; and the transform inside a tf.data map (graph mode).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mnv2_jax.data import seg_preprocessing as sp


@pytest.mark.parametrize("field, value", [
    ("crop_size", (0, 5)), ("crop_size", (5,)), ("crop_size", (5.0, 5)),
    ("min_scale", 0.0), ("max_scale", 0.25), ("scale_step", -1.0), ("scale_step", 0.4),
    ("min_scale", float("nan")), ("flip", 1), ("pad_value", 256), ("ignore_label", -1),
])
def test_check_names_the_field(field, value):
  with pytest.raises(ValueError, match=rf"SegAugment\.{field}="):
    sp.SegAugment(**{field: value}).check()


def test_defaults_are_deeplabs_voc_recipe():
  aug = sp.SegAugment().check()
  assert aug.crop_size == (513, 513) and aug.ignore_label == 255 and aug.pad_value == 128
  assert aug.scales() == (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
  assert sp.SegAugment(crop_size=33).crop_size == (33, 33)
  assert sp.SegAugment(crop_size=[9, 7]).check().crop_size == (9, 7)
  assert sp.SegAugment(scale_step=0.0).scales() is None
  drawn = {round(float(sp.random_scale(tf.constant([0, i]), aug)), 6) for i in range(150)}
  assert drawn == set(aug.scales())  # Uniform over the 7 values: all appear in 150 draws.
  continuous = [float(sp.random_scale(tf.constant([1, i]), sp.SegAugment(scale_step=0.0)))
                for i in range(20)]
  assert all(0.5 <= s < 2.0 for s in continuous) and len(set(continuous)) == 20


def test_scaling_by_hand_truncation_and_align_corners():
  # 5 x 7 at 0.75 -> int(3.75) x int(5.25) = 3 x 5. Rows are constant: image 10 * y, label y.
  image = np.repeat(np.arange(5, dtype=np.uint8)[:, None] * 10, 7, 1)[..., None].repeat(3, -1)
  label = np.repeat(np.arange(5, dtype=np.uint8)[:, None], 7, 1)[..., None]
  scaled_image, scaled_label = sp.scale_image_and_label(image, label, tf.constant(0.75))
  assert scaled_image.shape == (3, 5, 3) and scaled_label.shape == (3, 5, 1)
  # align_corners: output row i samples input row i * (5 - 1) / (3 - 1) = 2i -> 0, 2, 4.
  np.testing.assert_array_equal(scaled_label.numpy()[:, 0, 0], [0, 2, 4])
  np.testing.assert_array_equal(scaled_image.numpy()[:, 0, 0], [0, 20, 40])
  # Up: 2 -> 3 columns samples 0, 0.5, 1: bilinear gives the midpoint, rounded half up.
  two = np.array([[[0], [25]]], np.uint8).repeat(3, -1)
  up, _ = sp.scale_image_and_label(two, np.zeros((1, 2, 1), np.uint8), tf.constant(1.5))
  np.testing.assert_array_equal(up.numpy()[0, :, 0], [0, 13, 25])


def _example(rng, height, width):
  """A label map with 255s and an image whose channel 0 is 10 * label (255 -> 250)."""
  label = rng.integers(0, 21, (height, width)).astype(np.uint8)
  label[rng.random((height, width)) < 0.1] = 255
  image = np.stack([np.minimum(label.astype(np.int32) * 10, 250),
                    rng.integers(0, 256, (height, width)),
                    np.full((height, width), 7)], -1).astype(np.uint8)
  return image, label


def test_train_shapes_values_and_padding():
  rng = np.random.default_rng(0)
  image, label = _example(rng, 9, 14)
  aug = sp.SegAugment(crop_size=(12, 10))
  for i in range(12):
    out_image, out_label = sp.preprocess_for_train(image, label[..., None], tf.constant([3, i]),
                                                   aug)
    assert out_image.shape == (12, 10, 3) and out_image.dtype == tf.uint8
    assert out_label.shape == (12, 10) and out_label.dtype == tf.uint8
    assert set(np.unique(out_label.numpy())) <= set(np.unique(label)) | {255}
  # Scale fixed at 1 and a crop larger than the image: pure bottom/right padding.
  fixed = sp.SegAugment(crop_size=(12, 16), min_scale=1.0, max_scale=1.0, flip=False)
  out_image, out_label = sp.preprocess_for_train(image, label, tf.constant([0, 0]), fixed)
  np.testing.assert_array_equal(out_image.numpy()[:9, :14], image)
  np.testing.assert_array_equal(out_label.numpy()[:9, :14], label)
  assert (out_image.numpy()[9:] == 128).all() and (out_image.numpy()[:, 14:] == 128).all()
  assert (out_label.numpy()[9:] == 255).all() and (out_label.numpy()[:, 14:] == 255).all()


def test_crop_and_flip_are_joint():
  rng = np.random.default_rng(1)
  image, label = _example(rng, 20, 24)
  aug = sp.SegAugment(crop_size=(8, 8), min_scale=1.0, max_scale=1.0)
  flipped_count = 0
  for i in range(40):
    out_image, out_label = (t.numpy() for t in sp.preprocess_for_train(
        image, label, tf.constant([5, i]), aug))
    np.testing.assert_array_equal(out_image[..., 0], np.minimum(out_label.astype(int) * 10, 250))
    # Locate the window in the original (unflipped or flipped) to tell the flip happened.
    windows = [(y, x, f) for y in range(13) for x in range(17) for f in (False, True)
               if np.array_equal((label[y:y + 8, x:x + 8][:, ::-1] if f else
                                  label[y:y + 8, x:x + 8]), out_label)]
    assert windows, i
    flipped_count += windows[0][2]
  assert 5 < flipped_count < 35  # Both orientations happen (p = 1/2).


def test_scaled_labels_stay_aligned_with_the_image():
  # Blocks of 8 x 8, image = 10 * label. Where the scaled image is constant over a 3 x 3
  # neighbourhood, bilinear sampled one block only, and the nearest-neighbour label (which
  # picks one of the two rows/columns bilinear mixes) must name that block. A crop offset or
  # flip applied to one of them only breaks this at many such pixels.
  rng = np.random.default_rng(2)
  blocks = rng.integers(0, 21, (6, 6)).astype(np.uint8)
  label = np.kron(blocks, np.ones((8, 8), np.uint8))
  image = np.stack([label * 10] * 3, -1).astype(np.uint8)
  aug = sp.SegAugment(crop_size=(24, 24))
  for i in range(10):
    out_image, out_label = (t.numpy() for t in sp.preprocess_for_train(
        image, label, tf.constant([7, i]), aug))
    x = out_image[..., 0].astype(int)
    centre = x[1:-1, 1:-1]
    flat = np.ones_like(centre, bool)
    for dy in (0, 1, 2):
      for dx in (0, 1, 2):
        flat &= x[dy:dy + 22, dx:dx + 22] == centre
    inner_label = out_label[1:-1, 1:-1]
    check = flat & (inner_label != 255)
    assert check.sum() > 50, i
    np.testing.assert_array_equal(centre[check], inner_label[check].astype(int) * 10)
    mirrored = out_label[:, ::-1][1:-1, 1:-1]
    assert (centre[check] != mirrored[check].astype(int) * 10).any()  # The check has teeth.


def test_seeded_determinism():
  rng = np.random.default_rng(3)
  image, label = _example(rng, 30, 25)
  aug = sp.SegAugment(crop_size=(16, 16))
  first = [t.numpy() for t in sp.preprocess_for_train(image, label, tf.constant([9, 1]), aug)]
  again = [t.numpy() for t in sp.preprocess_for_train(image, label, tf.constant([9, 1]), aug)]
  other = [t.numpy() for t in sp.preprocess_for_train(image, label, tf.constant([9, 2]), aug)]
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def test_eval_pads_only_and_refuses_larger_images():
  rng = np.random.default_rng(4)
  image, label = _example(rng, 7, 5)
  aug = sp.SegAugment(crop_size=(8, 9))
  out_image, out_label = (t.numpy() for t in sp.preprocess_for_eval(image, label, aug))
  assert out_image.shape == (8, 9, 3) and out_label.shape == (8, 9)
  np.testing.assert_array_equal(out_image[:7, :5], image)
  np.testing.assert_array_equal(out_label[:7, :5], label)
  assert (out_label[7:] == 255).all() and (out_image[:, 5:] == 128).all()
  with pytest.raises(tf.errors.InvalidArgumentError, match="larger than SegAugment.crop_size"):
    sp.preprocess_for_eval(image, label, sp.SegAugment(crop_size=(6, 9)))


def test_in_a_tf_data_map_from_encoded_bytes():
  rng = np.random.default_rng(5)
  image, label = _example(rng, 11, 13)
  encoded = (tf.io.encode_png(image), tf.io.encode_png(label[..., None]))
  aug = sp.SegAugment(crop_size=(10, 10))

  def transform(i, img_bytes, label_bytes):
    img, lab = sp.decode(img_bytes, label_bytes)
    return sp.preprocess_for_train(img, lab, tf.stack([tf.constant(0, tf.int64), i]), aug)

  ds = tf.data.Dataset.range(4).map(lambda i: transform(i, *encoded)).batch(4)
  images, labels = next(iter(ds))
  assert images.shape == (4, 10, 10, 3) and labels.shape == (4, 10, 10)
  eager = sp.preprocess_for_train(image, label, tf.constant([0, 2], tf.int64), aug)
  np.testing.assert_array_equal(images[2], eager[0])
  np.testing.assert_array_equal(labels[2], eager[1])
