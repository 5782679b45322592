"""DeepLab's segmentation augmentation as pure, stateless tf.data ops (uint8 out).

Follows deeplab/input_preprocess.py `preprocess_image_and_label` with deeplab/core/
preprocess_utils.py, as run by DeepLab's VOC recipe (`--min_scale_factor=0.5
--max_scale_factor=2.0 --scale_factor_step_size=0.25 --train_crop_size=513,513`):

  train: scale s drawn uniformly from {min, min + step, ..., max} (7 values by default;
         step 0: uniform in [min, max)), applied jointly: new size = int(H * s) x int(W * s)
         (truncation, as DeepLab's float -> int32 cast), image bilinear, label nearest, both
         with align_corners=True (TF1's ResizeBilinear / ResizeNearestNeighbor, which DeepLab
         calls); pad at the bottom and right to at least the crop size, the image with the
         mean pixel and the label with ignore_label; one random crop window for both; a joint
         left-right flip with probability 1/2.
  eval:  pad at the bottom and right to the crop size; no scaling, no crop. DeepLab evaluates
         VOC at crop 513 because no VOC image is larger than 500 x 500: a larger image is an
         error here (DeepLab would fail on its static shape too), not a silent crop. The padded
         label pixels are ignore_label, so they count in neither the loss nor the mIoU.

Deviations from DeepLab, all from emitting uint8 (the project's pipelines ship uint8 and
normalise on device as x / 127.5 - 1, `mnv2_jax.image_norm`):
  * DeepLab keeps the scaled image in float32; here it is rounded to uint8 (half up), an error
    of at most 0.5 / 127.5 after normalisation.
  * DeepLab pads with the mean pixel 127.5, which normalises to exactly 0; uint8 cannot hold it,
    so the default `pad_value` is 128 (-> +0.0039). Set 127 for -0.0039.
  * Randomness is stateless (an explicit seed [2] per example, as in preprocessing.py) instead
    of DeepLab's stateful ops, so a batch is a pure function of its position (exact resume);
    the flip fires when u < 0.5 (DeepLab: u <= 0.5; the same probability).
  * A scaled side is at least 1 pixel (DeepLab would fail on a 1-pixel side at s < 1).
  Not done (DeepLab's VOC recipe does not use them either): min/max_resize_value, colour
  jitter.

Outputs: image uint8 [crop_h, crop_w, 3], label uint8 [crop_h, crop_w] with 255 (or
`ignore_label`) = ignore; static shapes, ready to batch. TensorFlow is imported lazily (on the
first call), as in pipeline.py, so importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
import math

from mnv2_jax.data import pipeline


@dataclasses.dataclass(frozen=True)
class SegAugment:
  """Options of the segmentation augmentation (DeepLab's VOC defaults). Call `check()`.

  Attributes:
    crop_size: (height, width) of every output; an int means a square crop.
    min_scale, max_scale: range of the random scale factor (train only).
    scale_step: spacing of the discrete scale factors; 0 = continuous uniform.
    flip: random left-right flip (train only).
    pad_value: image padding value, the uint8 stand-in for DeepLab's mean pixel 127.5.
    ignore_label: label padding value, the label the loss and metrics ignore.
  """
  crop_size: tuple[int, int] = (513, 513)
  min_scale: float = 0.5
  max_scale: float = 2.0
  scale_step: float = 0.25
  flip: bool = True
  pad_value: int = 128
  ignore_label: int = 255

  def __post_init__(self):
    crop = self.crop_size
    if isinstance(crop, int) and not isinstance(crop, bool):
      crop = (crop, crop)
    if isinstance(crop, list):
      crop = tuple(crop)
    object.__setattr__(self, "crop_size", crop)

  def _fail(self, name: str, allowed: str):
    raise ValueError(f"SegAugment.{name}={getattr(self, name)!r} is invalid; allowed: "
                     f"{allowed}.")

  def check(self) -> SegAugment:
    """Raises ValueError naming the first invalid field; returns self."""
    crop = self.crop_size
    if not (isinstance(crop, tuple) and len(crop) == 2 and all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in crop)):
      self._fail("crop_size", "(height, width) of two ints >= 1, or one int")
    for name in ("min_scale", "max_scale", "scale_step"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
          value):
        self._fail(name, "a finite number")
    if self.min_scale <= 0:
      self._fail("min_scale", "a number > 0")
    if self.max_scale < self.min_scale:
      self._fail("max_scale", f"a number >= min_scale={self.min_scale}")
    if self.scale_step < 0:
      self._fail("scale_step", "0 (continuous) or a number > 0")
    if self.scale_step > 0 and self.max_scale > self.min_scale:
      steps = (self.max_scale - self.min_scale) / self.scale_step
      if abs(steps - round(steps)) > 1e-6:
        self._fail("scale_step", f"0, or a step that divides max_scale - min_scale = "
                   f"{self.max_scale - self.min_scale:g} into whole steps")
    if not isinstance(self.flip, bool):
      self._fail("flip", "True or False")
    for name in ("pad_value", "ignore_label"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        self._fail(name, "an int in 0..255 (uint8)")
    return self

  def scales(self) -> tuple[float, ...] | None:
    """The discrete scale factors, or None when they are continuous (scale_step = 0)."""
    if self.max_scale == self.min_scale:
      return (float(self.min_scale),)
    if self.scale_step == 0:
      return None
    n = int(round((self.max_scale - self.min_scale) / self.scale_step)) + 1
    return tuple(self.min_scale + i * self.scale_step for i in range(n))


def decode(encoded_image, encoded_label):
  """(JPEG/PNG image bytes, PNG label bytes) -> (uint8 [H, W, 3], uint8 [H, W, 1])."""
  tf = pipeline._tf()  # pylint: disable=protected-access
  image = tf.io.decode_image(encoded_image, channels=3, dtype=tf.uint8, expand_animations=False)
  label = tf.io.decode_png(encoded_label, channels=1, dtype=tf.uint8)
  image.set_shape([None, None, 3])
  label.set_shape([None, None, 1])
  return image, label


def random_scale(seed, aug: SegAugment):
  """The scale factor (float32 scalar) for the example with this seed."""
  tf = pipeline._tf()  # pylint: disable=protected-access
  scales = aug.scales()
  if scales is None:
    return tf.random.stateless_uniform([], seed, minval=aug.min_scale, maxval=aug.max_scale)
  if len(scales) == 1:
    return tf.constant(scales[0], tf.float32)
  index = tf.random.stateless_uniform([], seed, minval=0, maxval=len(scales), dtype=tf.int32)
  return tf.linspace(float(aug.min_scale), float(aug.max_scale), len(scales))[index]


def scale_image_and_label(image, label, scale):
  """Resizes uint8 image [H, W, 3] and label [H, W, 1] by `scale` (align_corners=True)."""
  tf = pipeline._tf()  # pylint: disable=protected-access
  size = tf.maximum(tf.cast(tf.cast(tf.shape(image)[:2], tf.float32) * scale, tf.int32), 1)
  scaled = tf.raw_ops.ResizeBilinear(images=tf.cast(image, tf.float32)[None], size=size,
                                     align_corners=True, half_pixel_centers=False)[0]
  # Convex weights keep the values in [0, 255]: rounding half up is + 0.5 and truncation.
  image = tf.cast(scaled + 0.5, tf.uint8)
  label = tf.raw_ops.ResizeNearestNeighbor(images=label[None], size=size, align_corners=True,
                                           half_pixel_centers=False)[0]
  return image, label


def pad_to_crop(image, label, aug: SegAugment):
  """Pads at the bottom and right to at least `crop_size` (image: pad_value; label: ignore)."""
  tf = pipeline._tf()  # pylint: disable=protected-access
  shape = tf.shape(image)
  pad_h = tf.maximum(aug.crop_size[0] - shape[0], 0)
  pad_w = tf.maximum(aug.crop_size[1] - shape[1], 0)
  paddings = [[0, pad_h], [0, pad_w], [0, 0]]
  image = tf.pad(image, paddings, constant_values=tf.constant(aug.pad_value, image.dtype))
  label = tf.pad(label, paddings, constant_values=tf.constant(aug.ignore_label, label.dtype))
  return image, label


def preprocess_for_train(image, label, seed, aug: SegAugment):
  """DeepLab's training transform (module docstring) for one example.

  Args:
    image: uint8 [H, W, 3]; label: uint8 [H, W, 1] or [H, W] (0..C-1 and ignore_label).
    seed: int32/int64 tensor [2]; all randomness of this example derives from it.
    aug: the options (checked here).

  Returns:
    (uint8 [crop_h, crop_w, 3], uint8 [crop_h, crop_w]).
  """
  tf = pipeline._tf()  # pylint: disable=protected-access
  aug.check()
  image, label = tf.convert_to_tensor(image), _with_channel(tf, label)
  scale_seed, crop_seed, flip_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, num=3))
  image, label = scale_image_and_label(image, label, random_scale(scale_seed, aug))
  image, label = pad_to_crop(image, label, aug)
  crop_h, crop_w = aug.crop_size
  shape = tf.shape(image)
  offset_y = tf.random.stateless_uniform([], crop_seed, minval=0, maxval=shape[0] - crop_h + 1,
                                         dtype=tf.int32)
  offset_x = tf.random.stateless_uniform(
      [], tf.random.experimental.stateless_fold_in(crop_seed, 1), minval=0,
      maxval=shape[1] - crop_w + 1, dtype=tf.int32)
  image = image[offset_y:offset_y + crop_h, offset_x:offset_x + crop_w]
  label = label[offset_y:offset_y + crop_h, offset_x:offset_x + crop_w]
  if aug.flip:
    flip = tf.random.stateless_uniform([], flip_seed) < 0.5
    image, label = tf.cond(flip, lambda: (image[:, ::-1], label[:, ::-1]),
                           lambda: (image, label))
  return _finish(image, label, aug)


def preprocess_for_eval(image, label, aug: SegAugment):
  """Pads to `crop_size` (no scaling, crop or flip); an image larger than it is an error."""
  tf = pipeline._tf()  # pylint: disable=protected-access
  aug.check()
  image, label = tf.convert_to_tensor(image), _with_channel(tf, label)
  shape = tf.shape(image)
  with tf.control_dependencies([tf.debugging.Assert(
      tf.logical_and(shape[0] <= aug.crop_size[0], shape[1] <= aug.crop_size[1]),
      ["eval image of size", shape[0], shape[1], "is larger than SegAugment.crop_size",
       aug.crop_size[0], aug.crop_size[1], "(DeepLab evaluates VOC, max 500 x 500, at 513)"])]):
    image, label = pad_to_crop(tf.identity(image), label, aug)
  return _finish(image, label, aug)


def _with_channel(tf, label):
  label = tf.convert_to_tensor(label)
  return label[..., None] if label.shape.rank == 2 else label


def _finish(image, label, aug: SegAugment):
  image.set_shape([aug.crop_size[0], aug.crop_size[1], 3])
  label = label[..., 0]
  label.set_shape(list(aug.crop_size))
  return image, label
