"""Detection input transforms (tf.data side): SSD random crop, flip, fixed-shape resize.

What is followed: tensorflow/models `research/object_detection`, the data side of
`ssdlite_mobilenet_v2_coco.config` (reference/heads_memory_latency.md §2):
  * `random_horizontal_flip` (probability 1/2; x -> 1 - x on the boxes), then
  * `ssd_random_crop` with the OD API defaults (`core/preprocessor.py`): one of 7 options is
    picked uniformly, min_object_covered = overlap_thresh = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9,
    1.0), aspect ratio range (0.5, 2.0), area range (0.1, 1.0) for every option, and with
    probability `random_coef` = 0.15 the original image is kept. The window comes from
    `sample_distorted_bounding_box` over the (clipped) ground-truth boxes, 100 attempts, the
    whole image when no window fits or when there are no boxes. Boxes are then pruned like
    `_strict_random_crop_image`: drop those completely outside the window, then those whose
    IoA = area(box & window) / area(box) is below the option's overlap_thresh (0.0 keeps every
    box that touches the window's interior), change to the window's frame and clip to [0, 1].
    Note: this is the OD API's rule, NOT the SSD paper's "keep a box whose centre lies in the
    crop" (Caffe SSD); min_object_covered 0.0 means "any window" (no coverage constraint).
  * `fixed_shape_resizer`: bilinear to resolution x resolution, aspect ratio not kept; the
    normalized boxes are unchanged by it.

Deviations, all deliberate:
  * Randomness is stateless (a per-example seed, see pipeline.py), not the OD API's stateful
    ops; the distribution is the same.
  * The resize is TF2's `tf.image.resize` (half-pixel centres), the OD API's TF1 resize with
    `align_corners=False` sampled without the half-pixel offset; the result is rounded to
    uint8 (the batch contract) where the OD API keeps float32.
  * Crowd boxes are dropped from the training targets (`is_crowd`). The OD API's own training
    path does not filter them (`util_ops.filter_groundtruth_with_crowd_boxes` exists but
    `inputs.transform_input_data` never calls it); TF Model Garden's detection parsers
    (`skip_crowd_during_training=True`) and automl/efficientdet do. Eval keeps them, flagged,
    for COCO evaluation.
  * Zero-area boxes are dropped from the training targets (as the OD API's
    `create_coco_tf_record.py` skips width/height <= 0 annotations; TFDS keeps them).
  * More than `max_boxes` boxes: the first `max_boxes` are kept (OD API `pad_or_clip_nd`).

Segmentation masks (uint8 [H, W, 1]) get the same crop and flip and a nearest-neighbour resize.
TensorFlow is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses

SSD_MIN_OBJECT_COVERED = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
SSD_OVERLAP_THRESH = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
SSD_ASPECT_RATIO_RANGE = (0.5, 2.0)
SSD_AREA_RANGE = (0.1, 1.0)
SSD_KEEP_ORIGINAL_PROB = 0.15  # The OD API's `random_coef`.
MAX_ATTEMPTS = 100
PAD_CLASS = -1


@dataclasses.dataclass(frozen=True)
class DetAugment:
  """Detection input settings. `resolution`: output side; `max_boxes`: box slots per image."""
  resolution: int = 320
  max_boxes: int = 100
  random_flip: bool = True
  ssd_random_crop: bool = True

  def check(self) -> DetAugment:
    """Returns self; raises ValueError naming the first invalid field."""
    for name in ("resolution", "max_boxes"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"DetAugment.{name}={value!r} is invalid; allowed: an int >= 1.")
    for name in ("random_flip", "ssd_random_crop"):
      value = getattr(self, name)
      if not isinstance(value, bool):
        raise ValueError(f"DetAugment.{name}={value!r} is invalid; allowed: True or False.")
    return self


def flip_left_right(image, boxes, segmentation=None):
  """Mirrors the image (and mask) and the normalized (ymin, xmin, ymax, xmax) boxes."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
  boxes = tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=1)
  image = tf.image.flip_left_right(image)
  if segmentation is not None:
    segmentation = tf.image.flip_left_right(segmentation)
  return image, boxes, segmentation


def random_flip(image, boxes, seed, segmentation=None):
  """`flip_left_right` with probability 1/2 (stateless, keyed by `seed` [2])."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  flip = tf.random.stateless_uniform([], seed=seed) < 0.5
  flipped = flip_left_right(image, boxes, segmentation)
  pick = lambda a, b: None if a is None else tf.cond(flip, lambda: a, lambda: b)
  return (pick(flipped[0], image), pick(flipped[1], boxes),
          pick(flipped[2], segmentation))


def prune_to_window(boxes, window, overlap_thresh):
  """The OD API's box rule for a crop `window` [4] (normalized ymin, xmin, ymax, xmax).

  Returns (keep [N] bool, boxes in the window's frame clipped to [0, 1]). A box is kept when
  it is not completely outside the window and area(box & window) / area(box) >=
  overlap_thresh (a zero-area box counts as IoA 0).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
  wy0, wx0, wy1, wx1 = tf.unstack(window)
  outside = (ymin >= wy1) | (xmin >= wx1) | (ymax <= wy0) | (xmax <= wx0)
  inter = (tf.maximum(tf.minimum(ymax, wy1) - tf.maximum(ymin, wy0), 0.0)
           * tf.maximum(tf.minimum(xmax, wx1) - tf.maximum(xmin, wx0), 0.0))
  area = (ymax - ymin) * (xmax - xmin)
  ioa = tf.math.divide_no_nan(inter, area)
  keep = tf.logical_not(outside) & (ioa >= overlap_thresh)
  scale = tf.stack([wy1 - wy0, wx1 - wx0, wy1 - wy0, wx1 - wx0])
  framed = (boxes - tf.stack([wy0, wx0, wy0, wx0])) / scale
  return keep, tf.clip_by_value(framed, 0.0, 1.0)


def ssd_random_crop(image, boxes, classes, seed, segmentation=None):
  """The OD API's `ssd_random_crop` (module docstring); stateless, keyed by `seed` [2].

  Returns (image, boxes, classes, segmentation) with the pruned, re-framed boxes.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  option_seed, keep_seed, box_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, num=3))
  option = tf.random.stateless_uniform(
      [], seed=option_seed, maxval=len(SSD_MIN_OBJECT_COVERED), dtype=tf.int32)
  crop = tf.random.stateless_uniform([], seed=keep_seed) > SSD_KEEP_ORIGINAL_PROB
  begin, size, window = tf.image.stateless_sample_distorted_bounding_box(
      tf.shape(image), tf.clip_by_value(boxes, 0.0, 1.0)[None], seed=box_seed,
      min_object_covered=tf.gather(tf.constant(SSD_MIN_OBJECT_COVERED), option),
      aspect_ratio_range=SSD_ASPECT_RATIO_RANGE, area_range=SSD_AREA_RANGE,
      max_attempts=MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
  keep, framed = prune_to_window(
      boxes, window[0, 0], tf.gather(tf.constant(SSD_OVERLAP_THRESH), option))
  begin = tf.where(crop, begin, tf.zeros_like(begin))
  size = tf.where(crop, size, tf.concat([tf.shape(image)[:2], [-1]], 0))  # [h, w, -1]
  keep = tf.logical_or(keep, tf.logical_not(crop))
  boxes = tf.where(crop, framed, boxes)
  out_image = tf.slice(image, begin, size)
  if segmentation is not None:
    segmentation = tf.slice(segmentation, begin, size)
  return (out_image, tf.boolean_mask(boxes, keep), tf.boolean_mask(classes, keep),
          segmentation)


def resize(image, resolution: int):
  """Bilinear resize to uint8 [r, r, 3] (preprocessing.resize: float32, round half up)."""
  from mnv2_jax.data import preprocessing  # pylint: disable=g-import-not-at-top
  return preprocessing.resize(image, resolution)


def resize_segmentation(segmentation, resolution: int):
  """Nearest-neighbour resize of a uint8 [H, W, 1] mask to [r, r] (labels stay labels)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  resized = tf.image.resize(segmentation, [resolution, resolution],
                            method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)
  return tf.cast(resized[..., 0], tf.uint8)


def pad_boxes(boxes, classes, max_boxes: int, is_crowd=None):
  """Pads (zeros, class -1, crowd False) or truncates to `max_boxes` slots."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  n = tf.minimum(tf.shape(classes)[0], max_boxes)
  pad = [[0, max_boxes - n]]
  boxes = tf.pad(tf.cast(boxes[:n], tf.float32), pad + [[0, 0]])
  classes = tf.pad(tf.cast(classes[:n], tf.int32), pad, constant_values=PAD_CLASS)
  boxes.set_shape([max_boxes, 4])
  classes.set_shape([max_boxes])
  if is_crowd is None:
    return boxes, classes
  is_crowd = tf.pad(tf.cast(is_crowd[:n], tf.bool), pad, constant_values=False)
  is_crowd.set_shape([max_boxes])
  return boxes, classes, is_crowd


def _nonempty(boxes):
  return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def preprocess_for_train(image, boxes, classes, seed, augment: DetAugment, *,
                         is_crowd=None, segmentation=None) -> dict:
  """Decoded uint8 [H, W, 3] image + its [N, 4] boxes, [N] classes -> one training example.

  Crowd boxes (`is_crowd`) and zero-area boxes are dropped first (they would also skew the
  crop's coverage test), then flip -> SSD crop -> resize -> pad, as enabled in `augment`.
  Returns {"image" uint8 [S, S, 3], "boxes" float32 [MAX, 4], "classes" int32 [MAX]}
  (+ "segmentation" uint8 [S, S] if a mask is given).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  boxes = tf.cast(boxes, tf.float32)
  classes = tf.cast(classes, tf.int32)
  keep = _nonempty(boxes)
  if is_crowd is not None:
    keep &= tf.logical_not(is_crowd)
  boxes, classes = tf.boolean_mask(boxes, keep), tf.boolean_mask(classes, keep)
  flip_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
  if augment.random_flip:
    image, boxes, segmentation = random_flip(image, boxes, flip_seed, segmentation)
  if augment.ssd_random_crop:
    image, boxes, classes, segmentation = ssd_random_crop(
        image, boxes, classes, crop_seed, segmentation)
  keep = _nonempty(boxes)  # Kept crop boxes have positive area already; cheap insurance.
  boxes, classes = pad_boxes(tf.boolean_mask(boxes, keep), tf.boolean_mask(classes, keep),
                             augment.max_boxes)
  out = {"image": resize(image, augment.resolution), "boxes": boxes, "classes": classes}
  if segmentation is not None:
    out["segmentation"] = resize_segmentation(segmentation, augment.resolution)
  return out


def preprocess_for_eval(image, boxes, classes, augment: DetAugment, *, is_crowd=None,
                        segmentation=None) -> dict:
  """Resize only; every box is kept (crowd flagged). Adds the original "height"/"width"."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if is_crowd is None:
    is_crowd = tf.zeros(tf.shape(classes), tf.bool)
  boxes, classes, is_crowd = pad_boxes(boxes, classes, augment.max_boxes, is_crowd)
  shape = tf.shape(image)
  out = {"image": resize(image, augment.resolution), "boxes": boxes, "classes": classes,
         "is_crowd": is_crowd, "height": shape[0], "width": shape[1]}
  if segmentation is not None:
    out["segmentation"] = resize_segmentation(segmentation, augment.resolution)
  return out
