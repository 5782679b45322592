"""Detection input pipelines over tfds `coco/2017` (and `digit_scenes`): ArrayRecord -> tf.data.

Features read (tfds `coco/2017` 1.1.0): "image" (JPEG, any size), "image/id" int64,
"objects": Sequence {"bbox": normalized (ymin, xmin, ymax, xmax), "label": 0..79 (contiguous;
see COCO_CATEGORY_IDS for COCO's own ids), "is_crowd": bool}. Optional: "objects/is_crowd"
(all False when absent) and "segmentation" (uint8 [H, W, 1]; digit_scenes has one), so
`digit_scenes` (same feature names) goes through the same code.

Batches (numpy, B = global_batch_size // process_count, S = augment.resolution):
  train: {"image" uint8 [B,S,S,3], "boxes" float32 [B,MAX,4] normalized corners in [0,1],
          "classes" int32 [B,MAX] 0..K-1, -1 = padding} (+ "segmentation" uint8 [B,S,S]);
  eval: the same plus "image_id" int32 [B] (COCO ids are < 2**31; -1 on padding), "height",
          "width" int32 [B] (original pixels), "is_crowd" bool [B,MAX], "mask" bool [B].
Augmentation and formatting: det_preprocessing.py (OD API ssd_random_crop + flip +
fixed-shape resize; crowd boxes dropped from training targets, kept and flagged in eval).

Reading follows pipeline.py's design: records fetched by index from ArrayRecord files, so the
dataset must be prepared with `--file_format=array_record`; train order is a fresh
index-shuffle permutation per epoch and augmentation is keyed by the stream position, so batch
k is a pure function of (seed, k, process_index, process_count) and `start_step` resumes
exactly. Eval: each process reads its contiguous shard in stored order; every process yields
the same number of batches, padded with mask False.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from mnv2_jax.data import datasets
from mnv2_jax.data import det_preprocessing
from mnv2_jax.data import digit_scenes
from mnv2_jax.data import pipeline

COCO_2017 = "coco/2017"
# tfds coco/2017 label i <-> COCO category id COCO_CATEGORY_IDS[i] (names in the order of
# the `categories` of instances_{train,val}2017.json, which tfds copies).
COCO_LABEL_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush")
COCO_CATEGORY_IDS = tuple(
    i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
_SKIP = tfds.decode.SkipDecoding
DatasetNotPreparedError = datasets.DatasetNotPreparedError
# pipeline.py's helpers, shared on purpose: the same index-based reading design.
# pylint: disable-next=protected-access
_tf, _keys, _reader, _local_batch = (pipeline._tf, pipeline._keys, pipeline._reader,
                                     pipeline._local_batch)


def _base_name(name: str) -> str:
  return name.split("/")[0].split(":")[0]


def _instructions(name: str, root: str) -> str:
  size = (" (downloads ~25 GB from images.cocodataset.org: train2017 18 GB, val2017 1 GB, "
          "test2017 6 GB, annotations 0.25 GB; the prepared dataset is ~25 GB more)"
          if _base_name(name) == "coco" else "")
  return (f"Prepare it once with `tfds build {name} --data_dir={root} "
          f"--file_format={datasets.ARRAY_RECORD}`{size}, or copy a prepared data_dir here. "
          "The ArrayRecord format is required: records are read by index.")


def get_builder(builder_or_name, data_dir: str | None = None):
  """The prepared builder (digit_scenes is prepared on first use; nothing is downloaded).

  Raises:
    DatasetNotPreparedError: not prepared under `data_dir`, or not stored as ArrayRecord
      (both with the command that fixes it).
  """
  if isinstance(builder_or_name, str):
    if _base_name(builder_or_name) == digit_scenes.NAME:
      digit_scenes.prepare(data_dir)
    builder = tfds.builder(builder_or_name, data_dir=data_dir)
  else:
    builder = builder_or_name
  root = os.fspath(builder.data_dir_root)
  name = builder.name + (f"/{builder.builder_config.name}" if builder.builder_config else "")
  if not builder.is_prepared():
    raise DatasetNotPreparedError(
        f"{name!r} is not prepared in {root!r}; mnv2_jax never downloads it implicitly. "
        + _instructions(name, root))
  file_format = getattr(builder.info.file_format, "value", builder.info.file_format)
  if file_format != datasets.ARRAY_RECORD:
    raise DatasetNotPreparedError(
        f"{name!r} in {root!r} is stored as {file_format!r}; the detection pipeline reads "
        f"records by index and needs {datasets.ARRAY_RECORD!r}. Convert it in place with "
        f"`tfds convert_format --dataset_version_dir={builder.data_dir} --out_file_format="
        f"{datasets.ARRAY_RECORD}` (needs `pip install apache-beam`) or rebuild it. "
        + _instructions(name, root))
  return builder


def num_classes(builder) -> int:
  """Object classes K (80 for coco/2017, 10 for digit_scenes); labels are 0..K-1."""
  return builder.info.features["objects"]["label"].num_classes


def _parser(tf, builder):
  """tf function: serialized record -> (image uint8 [H,W,3], boxes, classes, crowd, seg, id)."""
  features = builder.info.features
  has_seg = "segmentation" in features
  objects = features["objects"]
  has_crowd = "is_crowd" in objects.feature.keys()
  decoders = {"image": _SKIP(), **({"segmentation": _SKIP()} if has_seg else {})}

  def parse(record):
    ex = features.deserialize_example(record, decoders=decoders)
    image = tf.io.decode_image(ex["image"], channels=3, dtype=tf.uint8,
                               expand_animations=False)
    seg = None
    if has_seg:
      seg = tf.io.decode_png(ex["segmentation"], channels=1)
    obj = ex["objects"]
    classes = tf.cast(obj["label"], tf.int32)
    crowd = (tf.cast(obj["is_crowd"], tf.bool) if has_crowd
             else tf.zeros(tf.shape(classes), tf.bool))
    return image, tf.cast(obj["bbox"], tf.float32), classes, crowd, seg, ex["image/id"]
  return parse, has_seg


def _finish(tf, ds, prefetch: int):
  if prefetch:
    ds = ds.prefetch(tf.data.AUTOTUNE if prefetch < 0 else prefetch)
  options = tf.data.Options()
  options.deterministic = True
  options.autotune.enabled = True
  return ds.with_options(options)


def make_train_dataset(builder_or_name, *, data_dir: str | None = None,
                       split: str = "train", global_batch_size: int, seed: int,
                       augment: det_preprocessing.DetAugment = det_preprocessing.DetAugment(),
                       process_index: int = 0, process_count: int = 1,
                       start_step: int = 0, cache: bool = False,
                       num_parallel_calls: int = -1, prefetch: int = 2):
  """Infinite training batches of this process's shard (tf.data.Dataset; module docstring).

  The k-th batch is step `start_step + k`, identical to that step of a stream from 0.
  `cache` keeps this process's raw records in memory (small datasets).
  """
  augment.check()
  local_batch = _local_batch(global_batch_size, process_count)
  if start_step < 0:
    raise ValueError(f"start_step={start_step} must be >= 0.")
  builder = get_builder(builder_or_name, data_dir)
  tf = _tf()
  source = datasets.RecordSource(
      builder, datasets.process_split(split, process_index, process_count), cache=cache)
  n = len(source)
  if n == 0:
    raise ValueError(f"Process {process_index}/{process_count} got no examples of "
                     f"{builder.info.full_name}:{split}.")
  order_key = _keys(1, seed, process_index)
  augment_key = _keys(2, seed, process_index)
  read = _reader(tf, source)
  parse, _ = _parser(tf, builder)

  def batch_records(step):
    pos = step * local_batch + tf.range(local_batch, dtype=tf.int64)
    return read(pipeline.shuffled_indices(tf, pos, n, order_key)), pos

  def example(record, pos):
    image, boxes, classes, crowd, seg, _ = parse(record)
    seed_pair = tf.stack([tf.constant(augment_key, tf.int64), pos])
    return det_preprocessing.preprocess_for_train(
        image, boxes, classes, seed_pair, augment, is_crowd=crowd, segmentation=seg)

  parallel = tf.data.AUTOTUNE if num_parallel_calls < 0 else num_parallel_calls
  ds = tf.data.Dataset.range(start_step, 2**62).map(batch_records, num_parallel_calls=2)
  ds = ds.unbatch().map(example, num_parallel_calls=parallel)
  return _finish(tf, ds.batch(local_batch, drop_remainder=True), prefetch)


def make_eval_dataset(builder_or_name, *, data_dir: str | None = None,
                      split: str = "validation", global_batch_size: int,
                      augment: det_preprocessing.DetAugment = det_preprocessing.DetAugment(),
                      process_index: int = 0, process_count: int = 1, cache: bool = False,
                      num_parallel_calls: int = -1, prefetch: int = 2):
  """One pass over this process's shard of `split`, re-iterable (tf.data.Dataset).

  Every process yields ceil(largest shard / B) batches; padded slots have mask False, a zero
  image, image_id -1, height = width = 0, classes -1, segmentation 255 (ignore).
  """
  augment.check()
  local_batch = _local_batch(global_batch_size, process_count)
  builder = get_builder(builder_or_name, data_dir)
  tf = _tf()
  source = datasets.RecordSource(
      builder, datasets.process_split(split, process_index, process_count), cache=cache)
  n = len(source)
  num_batches = -(-max(n, datasets.max_shard_size(builder, split, process_count))
                  // local_batch)
  parse, has_seg = _parser(tf, builder)
  read = _reader(tf, source) if n else None
  s, m = augment.resolution, augment.max_boxes

  def batch_records(step):
    pos = step * local_batch + tf.range(local_batch, dtype=tf.int64)
    mask = pos < n
    if read is None:  # This process has no examples: all padding.
      return tf.fill([local_batch], ""), mask
    return read(tf.where(mask, pos, 0)), mask

  def real(record):
    image, boxes, classes, crowd, seg, image_id = parse(record)
    out = det_preprocessing.preprocess_for_eval(
        image, boxes, classes, augment, is_crowd=crowd, segmentation=seg)
    out["image_id"] = tf.cast(image_id, tf.int32)
    return out

  def padding():
    out = {"image": tf.zeros([s, s, 3], tf.uint8), "boxes": tf.zeros([m, 4]),
           "classes": tf.fill([m], det_preprocessing.PAD_CLASS),
           "is_crowd": tf.zeros([m], tf.bool), "height": tf.constant(0),
           "width": tf.constant(0), "image_id": tf.constant(-1)}
    if has_seg:
      out["segmentation"] = tf.fill([s, s], tf.constant(255, tf.uint8))
    return out

  def example(record, mask):
    out = tf.cond(mask, lambda: real(record), padding)
    out["image"].set_shape([s, s, 3])
    if has_seg:
      out["segmentation"].set_shape([s, s])
    out["mask"] = mask
    return out

  parallel = tf.data.AUTOTUNE if num_parallel_calls < 0 else num_parallel_calls
  ds = tf.data.Dataset.range(num_batches).map(batch_records)
  ds = ds.unbatch().map(example, num_parallel_calls=parallel)
  return _finish(tf, ds.batch(local_batch, drop_remainder=True), prefetch)


def category_ids(classes: np.ndarray) -> np.ndarray:
  """tfds coco/2017 labels (0..79; -1 padding stays -1) -> COCO category ids (1..90)."""
  classes = np.asarray(classes)
  table = np.asarray(COCO_CATEGORY_IDS, np.int64)
  return np.where(classes >= 0, table[np.clip(classes, 0, 79)], -1)
