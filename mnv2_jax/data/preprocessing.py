"""Pure TensorFlow image ops for the input pipeline (per example, uint8 out).

Every random op is *stateless*: it takes an explicit `seed` (int32/int64
tensor of shape [2]). The pipeline derives that seed from (run seed, process,
position in the stream), which makes each output a pure function of its
position: the property exact resume needs, independent of tf.data threading.

Encoded images are decoded here, not by TFDS (`SkipDecoding`), so that JPEGs
can be decoded and cropped in one fused step (`tf.image.decode_and_crop_jpeg`
skips most of the work for pixels outside the crop window). Non-JPEG
encodings (PNG: cifar10, imagenet_resized, sklearn_digits) fall back to a full
`tf.io.decode_image` followed by a slice. Grayscale is expanded to RGB by
the decoders (`channels=3`).

Recipes follow slim's `inception_preprocessing` as used for MobileNetV2
(reference/mobilenet_v2.md 1.6): train = sample_distorted_bounding_box
(min_object_covered 0.1, aspect 3/4..4/3, area [crop_area_min, 1], 100
attempts, whole image if none fits) -> bilinear resize -> random left-right
flip; eval = central_crop(0.875) of each side -> bilinear resize.
Known gap vs that recipe: slim's random colour distortion (fast mode:
brightness +-32/255, saturation 0.5..1.5) is not implemented.
"""

import tensorflow as tf

ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
MIN_OBJECT_COVERED = 0.1
MAX_ATTEMPTS = 100

# A crop window is an int32 vector [offset_y, offset_x, height, width], the
# layout `tf.image.decode_and_crop_jpeg` expects.


def random_crop_window(shape, seed, *, area_range=(0.05, 1.0),
                       aspect_ratio_range=ASPECT_RATIO_RANGE):
  """Samples an Inception-style crop window for an image of `shape` [H,W,C]."""
  whole_image = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4])
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.cast(shape, tf.int32), whole_image, seed=seed,
      min_object_covered=MIN_OBJECT_COVERED,
      aspect_ratio_range=aspect_ratio_range, area_range=area_range,
      max_attempts=MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
  return tf.stack([begin[0], begin[1], size[0], size[1]])


def central_crop_window(shape, fraction: float):
  """The window `tf.image.central_crop(image, fraction)` would keep."""
  height = tf.cast(shape[0], tf.float64)
  width = tf.cast(shape[1], tf.float64)
  offset_y = tf.cast((height - height * fraction) / 2, tf.int32)
  offset_x = tf.cast((width - width * fraction) / 2, tf.int32)
  return tf.stack([offset_y, offset_x,
                   tf.cast(shape[0], tf.int32) - 2 * offset_y,
                   tf.cast(shape[1], tf.int32) - 2 * offset_x])


def full_window(shape):
  """The window covering the whole image."""
  return tf.stack([0, 0, tf.cast(shape[0], tf.int32),
                   tf.cast(shape[1], tf.int32)])


def decode_and_crop(encoded, window_fn):
  """Decodes an encoded image and crops it to `window_fn(shape)`.

  Args:
    encoded: scalar tf.string, any format `tf.io.decode_image` reads.
    window_fn: maps an image shape [H, W, C] (int32) to a crop window.

  Returns:
    uint8 [h, w, 3] crop. JPEGs use the fused decode-and-crop kernel.
  """
  def jpeg():
    window = window_fn(tf.image.extract_jpeg_shape(encoded))
    return tf.image.decode_and_crop_jpeg(encoded, window, channels=3)

  def other():
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8,
                               expand_animations=False)
    window = window_fn(tf.shape(image))
    return tf.slice(image, tf.stack([window[0], window[1], 0]),
                    tf.stack([window[2], window[3], 3]))

  image = tf.cond(tf.io.is_jpeg(encoded), jpeg, other)
  image.set_shape([None, None, 3])
  return image


def resize(image, resolution: int):
  """Bilinear resize (align_corners=False, no antialias) to uint8 [r, r, C].

  An image already at `resolution` passes through unchanged. The input is
  cast to float32 first: TF's float32 ResizeBilinear kernel is faster than its
  uint8 one (which converts each tap on the fly) and the result is bit for bit
  the same (tested); the resize is ~25% of the per-image cost of the training
  transform (`benchmarks/input_pipeline.py --mode=breakdown`). Bilinear
  weights are convex, so the float result stays in [0, 255]: rounding half up
  is a plain `+ 0.5` and truncating cast, with no clip pass.
  """
  resized = tf.image.resize(tf.cast(image, tf.float32),
                            [resolution, resolution],
                            method=tf.image.ResizeMethod.BILINEAR)
  return tf.cast(resized + 0.5, tf.uint8)


def random_flip(image, seed):
  """Left-right flip with probability 1/2."""
  flip = tf.random.stateless_uniform([], seed=seed) < 0.5
  return tf.cond(flip, lambda: tf.image.flip_left_right(image),
                 lambda: image)


def pad_and_random_crop(image, seed, pad: int):
  """Zero-pads `pad` pixels per side, then crops back to the original size.

  The CIFAR-style small-image augmentation (random translation by up to `pad`
  pixels). No flip: it would not preserve digit identity (2 vs 5 etc.).
  """
  shape = tf.shape(image)
  padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
  return tf.image.stateless_random_crop(padded, shape, seed=seed)


def preprocess_for_train(encoded, seed, *, augment: str, resolution: int,
                         crop_area_min: float = 0.05):
  """Training transform: encoded image + seed [2] -> uint8 [r, r, 3].

  Args:
    encoded: scalar tf.string.
    seed: int tensor [2]; all randomness of this example derives from it.
    augment: "inception_crop_flip" (ImageNet-like), "pad_crop" (small images:
      resize, then pad resolution // 8 and random crop; no flip), "pad_crop_flip"
      (the same plus a left-right flip: CIFAR's and Fashion-MNIST's usual
      augmentation, for classes that are mirror-symmetric) or "none" (resize only).
    resolution: output side.
    crop_area_min: lower end of the Inception crop area range.
  """
  crop_seed, flip_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, num=2))
  if augment == "inception_crop_flip":
    image = decode_and_crop(encoded, lambda shape: random_crop_window(
        shape, crop_seed, area_range=(crop_area_min, 1.0)))
    return random_flip(resize(image, resolution), flip_seed)
  image = resize(decode_and_crop(encoded, full_window), resolution)
  if augment in ("pad_crop", "pad_crop_flip"):
    image = pad_and_random_crop(image, crop_seed, pad=max(1, resolution // 8))
    return random_flip(image, flip_seed) if augment == "pad_crop_flip" else image
  if augment == "none":
    return image
  raise ValueError(f"Unknown augment {augment!r}.")


def preprocess_for_eval(encoded, *, resolution: int, crop: float = 0.875):
  """Eval transform: central crop of `crop` of each side, bilinear resize."""
  image = decode_and_crop(
      encoded, lambda shape: central_crop_window(shape, crop))
  return resize(image, resolution)
