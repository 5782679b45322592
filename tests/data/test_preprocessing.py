"""Image ops, run both eagerly and inside tf.data (the two can differ)."""

import io

import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from mnv2_jax.data.normalize import normalize
from mnv2_jax.data import preprocessing as pp

AUGMENTS = ("inception_crop_flip", "pad_crop", "none")


def _encode(array: np.ndarray, fmt: str) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(array.squeeze()).save(buf, format=fmt, quality=95)
  return buf.getvalue()


def _image(h=48, w=64, seed=0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  coarse = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
  return np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR))


def _in_tf_data(fn, *args):
  """Runs `fn(*args)` as a tf.data map and returns the numpy result."""
  ds = tf.data.Dataset.from_tensors(tuple(args)).map(fn)
  return next(iter(ds.as_numpy_iterator()))


@pytest.mark.parametrize("shape,fraction", [((48, 64, 3), 0.875),
                                            ((375, 500, 3), 0.875),
                                            ((7, 9, 1), 0.5), ((8, 8, 1), 1.0)])
def test_central_window_matches_tf_central_crop(shape, fraction):
  image = tf.zeros(shape)
  oy, ox, h, w = pp.central_crop_window(tf.constant(shape), fraction).numpy()
  expected = tf.image.central_crop(image, fraction).shape
  assert (h, w) == tuple(expected[:2])
  assert (oy, ox) == ((shape[0] - h) // 2, (shape[1] - w) // 2)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_decode_and_crop_equals_decode_then_slice(fmt):
  encoded = tf.constant(_encode(_image(), fmt))
  full = tf.io.decode_image(encoded, channels=3).numpy()
  window = lambda shape: tf.constant([5, 7, 30, 41])
  eager = pp.decode_and_crop(encoded, window).numpy()
  traced = _in_tf_data(lambda e: pp.decode_and_crop(e, window), encoded)
  expected = full[5:35, 7:48]
  assert eager.shape == expected.shape == (30, 41, 3)
  if fmt == "PNG":
    np.testing.assert_array_equal(eager, expected)
  else:  # The fused JPEG crop upsamples chroma at the window edge itself.
    diff = np.abs(eager.astype(int) - expected)
    assert diff.mean() < 1.0 and np.median(diff) == 0
  np.testing.assert_array_equal(traced, eager)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_grayscale_becomes_three_equal_channels(fmt):
  gray = _image()[..., :1]
  out = pp.preprocess_for_eval(tf.constant(_encode(gray, fmt)),
                               resolution=24, crop=1.0).numpy()
  assert out.shape == (24, 24, 3) and out.dtype == np.uint8
  np.testing.assert_array_equal(out[..., 0], out[..., 1])
  np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_random_crop_window_in_bounds_and_in_range():
  areas, hits = [], 0
  for s in range(200):
    oy, ox, h, w = pp.random_crop_window(
        tf.constant([375, 500, 3]), tf.constant([s, 7]),
        area_range=(0.05, 1.0)).numpy()
    assert 0 <= oy and oy + h <= 375 and 0 <= ox and ox + w <= 500
    if (h, w) != (375, 500):  # Not the whole-image fallback.
      hits += 1
      areas.append(h * w / (375 * 500))
      assert 0.7 <= w / h <= 1.4  # 3/4..4/3 up to integer rounding.
  assert hits > 150 and min(areas) >= 0.045 and max(areas) <= 1.0
  same = [pp.random_crop_window(tf.constant([375, 500, 3]), tf.constant([3, 7]))
          .numpy() for _ in range(2)]
  np.testing.assert_array_equal(same[0], same[1])


def test_random_flip_is_seeded_and_fair():
  image = tf.constant(_image())
  flips = 0
  for s in range(200):
    out = pp.random_flip(image, tf.constant([s, 0])).numpy()
    if not np.array_equal(out, image.numpy()):
      np.testing.assert_array_equal(out, image.numpy()[:, ::-1])
      flips += 1
  assert 70 <= flips <= 130


def test_pad_and_random_crop_is_a_translation():
  image = tf.constant(_image(16, 16))
  for s in range(10):
    out = pp.pad_and_random_crop(image, tf.constant([s, 1]), pad=2).numpy()
    padded = np.pad(image.numpy(), [[2, 2], [2, 2], [0, 0]])
    assert any(np.array_equal(out, padded[dy:dy + 16, dx:dx + 16])
               for dy in range(5) for dx in range(5))


def test_pad_crop_flip_mirrors_about_half_of_the_pad_crops_and_pad_crop_none():
  """pad_crop_flip = pad_crop's translation, then a left-right flip half of the time."""
  image = _image(16, 16)
  encoded = tf.constant(_encode(image, "PNG"))
  padded = np.pad(image, [[2, 2], [2, 2], [0, 0]])
  crops = [padded[dy:dy + 16, dx:dx + 16] for dy in range(5) for dx in range(5)]
  flips = {"pad_crop": 0, "pad_crop_flip": 0}
  for augment in flips:
    for s in range(60):
      out = pp.preprocess_for_train(encoded, tf.constant([s, 5], tf.int64), augment=augment,
                                    resolution=16).numpy()
      if any(np.array_equal(out, c) for c in crops):
        continue
      assert any(np.array_equal(out, c[:, ::-1]) for c in crops), (augment, s)
      flips[augment] += 1
  assert flips["pad_crop"] == 0
  assert 15 <= flips["pad_crop_flip"] <= 45


@pytest.mark.parametrize("shape,resolution", [((375, 500), 224),
                                               ((97, 61), 224), ((40, 40), 32),
                                               ((1, 300), 96), ((513, 7), 32)])
def test_resize_equals_tf_resize_of_uint8_rounded_half_up(shape, resolution):
  image = np.random.default_rng(1).integers(0, 256, shape + (3,), np.uint8)
  expected = tf.image.resize(tf.constant(image), [resolution, resolution])
  expected = np.floor(expected.numpy().astype(np.float64) + 0.5)
  got = pp.resize(tf.constant(image), resolution).numpy()
  assert got.dtype == np.uint8
  np.testing.assert_array_equal(got, expected.astype(np.uint8))


def test_resize_same_size_is_identity():
  image = _image(32, 32)
  np.testing.assert_array_equal(pp.resize(tf.constant(image), 32).numpy(),
                                image)


@pytest.mark.parametrize("augment", AUGMENTS)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_train_transform_shapes_determinism_eager_and_tf_data(augment, fmt):
  encoded = tf.constant(_encode(_image(), fmt))
  fn = lambda e, s: pp.preprocess_for_train(e, s, augment=augment,
                                            resolution=32, crop_area_min=0.1)
  seed = tf.constant([11, 3], tf.int64)
  eager = fn(encoded, seed).numpy()
  assert eager.shape == (32, 32, 3) and eager.dtype == np.uint8
  np.testing.assert_array_equal(_in_tf_data(fn, encoded, seed), eager)
  outs = {fn(encoded, tf.constant([s, 3], tf.int64)).numpy().tobytes()
          for s in range(6)}
  assert (len(outs) == 1) == (augment == "none")


def test_eval_transform_in_tf_data_and_range():
  encoded = tf.constant(_encode(_image(375, 500), "JPEG"))
  fn = lambda e: pp.preprocess_for_eval(e, resolution=224, crop=0.875)
  out = _in_tf_data(fn, encoded)
  assert out.shape == (224, 224, 3) and out.dtype == np.uint8
  np.testing.assert_array_equal(out, fn(encoded).numpy())
  assert out.max() > 200 and out.min() < 50  # The content survived.


def test_normalize_maps_uint8_to_minus_one_one():
  x = jnp.array([0, 127, 128, 255], jnp.uint8)
  np.testing.assert_allclose(normalize(x),
                             [-1.0, 127 / 127.5 - 1, 128 / 127.5 - 1, 1.0],
                             rtol=0, atol=1e-7)
  out = normalize(x, jnp.bfloat16)
  assert out.dtype == jnp.bfloat16 and float(out[0]) == -1.0
