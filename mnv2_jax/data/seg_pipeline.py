"""Segmentation input pipelines over a TFDS builder with "image" + "segmentation" features
(`voc2012_segmentation`, `voc2012_segmentation/trainaug`): ArrayRecord -> tf.data.

Batches (numpy, B = global_batch_size // process_count, S = crop size):
  train: {"image" uint8 [B,S,S,3], "segmentation" uint8 [B,S,S]} (255 = ignore);
  eval: the same plus "mask" bool [B] (False on the padding of the last batch).
Augmentation: `seg_preprocessing` (DeepLab's random scale, pad, crop, flip; eval pads to the
crop). Reading follows `pipeline.py` / `coco_detection.py`: records by index, one fresh
permutation per epoch, augmentation keyed by the stream position, so batch k is a pure
function of (seed, k, process) and `start_step` resumes exactly.

Preparation: `get_builder` prepares `voc2012_segmentation` from the official archives in
`manual_dir` when they are there (no network is used); otherwise it raises
`DatasetNotPreparedError` with the builder's instructions.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from mnv2_jax.data import datasets
from mnv2_jax.data import pipeline
from mnv2_jax.data import seg_preprocessing
from mnv2_jax.data import voc_segmentation

_SKIP = tfds.decode.SkipDecoding


def get_builder(name: str, data_dir: str | None = None, manual_dir: str | None = None):
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    config = builder.builder_config.name if builder.builder_config else "official"
    if (builder.name == voc_segmentation.Voc2012Segmentation.name and manual_dir
        and not voc_segmentation.missing_files(manual_dir, config)):
      builder.download_and_prepare(
          file_format=datasets.ARRAY_RECORD,
          download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    else:
      where = manual_dir or os.path.join(os.fspath(builder.data_dir_root), "downloads",
                                         "manual")
      raise datasets.DatasetNotPreparedError(
          f"{name!r} is not prepared in {os.fspath(builder.data_dir_root)!r}. "
          + (voc_segmentation.instructions(where)
             if builder.name == voc_segmentation.Voc2012Segmentation.name else
             f"Prepare it with `tfds build {name} --file_format={datasets.ARRAY_RECORD}`.")
          + " Then pass config.input.manual_dir=<that dir> (prepared on first use).")
  return builder


def num_classes(builder) -> int:
  if builder.name == voc_segmentation.Voc2012Segmentation.name:
    return voc_segmentation.NUM_CLASSES
  raise ValueError(f"unknown class count for {builder.name!r}")


def _parser(tf, builder):
  features = builder.info.features
  decoders = {"image": _SKIP(), "segmentation": _SKIP()}

  def parse(record):
    ex = features.deserialize_example(record, decoders=decoders)
    return seg_preprocessing.decode(ex["image"], ex["segmentation"])
  return parse


def _options(tf, ds, prefetch):
  if prefetch:
    ds = ds.prefetch(tf.data.AUTOTUNE if prefetch < 0 else prefetch)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options)


def make_train_dataset(builder, *, split: str, global_batch_size: int, seed: int,
                       augment: seg_preprocessing.SegAugment, process_index: int = 0,
                       process_count: int = 1, start_step: int = 0, prefetch: int = 2):
  augment.check()
  local_batch = pipeline._local_batch(global_batch_size, process_count)  # pylint: disable=protected-access
  tf = pipeline._tf()  # pylint: disable=protected-access
  source = datasets.RecordSource(builder, datasets.process_split(split, process_index,
                                                                 process_count))
  n = len(source)
  order_key = pipeline._keys(1, seed, process_index)  # pylint: disable=protected-access
  augment_key = pipeline._keys(2, seed, process_index)  # pylint: disable=protected-access
  read, parse = pipeline._reader(tf, source), _parser(tf, builder)  # pylint: disable=protected-access

  def batch_records(step):
    pos = step * local_batch + tf.range(local_batch, dtype=tf.int64)
    return read(pipeline.shuffled_indices(tf, pos, n, order_key)), pos

  def example(record, pos):
    image, label = parse(record)
    image, label = seg_preprocessing.preprocess_for_train(
        image, label, tf.stack([tf.constant(augment_key, tf.int64), pos]), augment)
    return {"image": image, "segmentation": label}

  ds = tf.data.Dataset.range(start_step, 2**62).map(batch_records, num_parallel_calls=2)
  ds = ds.unbatch().map(example, num_parallel_calls=tf.data.AUTOTUNE)
  return _options(tf, ds.batch(local_batch, drop_remainder=True), prefetch)


def make_eval_dataset(builder, *, split: str, global_batch_size: int,
                      augment: seg_preprocessing.SegAugment, process_index: int = 0,
                      process_count: int = 1, prefetch: int = 2):
  augment.check()
  local_batch = pipeline._local_batch(global_batch_size, process_count)  # pylint: disable=protected-access
  tf = pipeline._tf()  # pylint: disable=protected-access
  source = datasets.RecordSource(builder, datasets.process_split(split, process_index,
                                                                 process_count))
  n = len(source)
  num_batches = -(-max(n, datasets.max_shard_size(builder, split, process_count))
                  // local_batch)
  read, parse = pipeline._reader(tf, source), _parser(tf, builder)  # pylint: disable=protected-access
  h, w = augment.crop_size

  def batch_records(step):
    pos = step * local_batch + tf.range(local_batch, dtype=tf.int64)
    mask = pos < n
    return read(tf.where(mask, pos, 0)), mask

  def example(record, mask):
    def real():
      image, label = parse(record)
      return seg_preprocessing.preprocess_for_eval(image, label, augment)

    def padding():
      return (tf.zeros([h, w, 3], tf.uint8),
              tf.fill([h, w], tf.constant(augment.ignore_label, tf.uint8)))
    image, label = tf.cond(mask, real, padding)
    image.set_shape([h, w, 3])
    label.set_shape([h, w])
    return {"image": image, "segmentation": label, "mask": mask}

  ds = tf.data.Dataset.range(num_batches).map(batch_records)
  ds = ds.unbatch().map(example, num_parallel_calls=tf.data.AUTOTUNE)
  return _options(tf, ds.batch(local_batch, drop_remainder=True), prefetch)
