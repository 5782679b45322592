"""Train and eval input pipelines: TFDS ArrayRecord -> tf.data -> uint8 NHWC.

Design (exact resume + throughput):
  * Order is index arithmetic, not a shuffle buffer. Example i of batch k of
    a process sits at stream position p = k * B + i; epoch e = p // n and
    record = index_shuffle(p mod n, seed=(run seed, process, e)) -- a full,
    fresh permutation of the process's n records every epoch, computed in
    O(1) per example (`tf.random.experimental.index_shuffle`).
  * Augmentation randomness is stateless and keyed by (run seed, process, p).
  * Hence batch k is a pure function of (seed, k, process_index,
    process_count): `make_train_iterator(start_step=k)` starts at k in O(1)
    and yields exactly what an uninterrupted iterator yields from step k on.
    No iterator state to checkpoint, the trainer only stores its step.
  * Records are fetched by index from ArrayRecord files (`tfds.data_source`,
    raw serialized bytes, one Python call per batch); parsing, JPEG
    decode+crop, resize and flip run as tf.data C++ maps on all threads with
    `deterministic=True` (order preserved, results independent of threading).

Why not the alternatives: a tf.data TFRecord pipeline with seeded shuffle
buffers resumes only by re-reading the epoch up to the resume point and needs
`shuffle_buffer` RAM; grain over the same data source resumes in O(1) too,
but runs the per-example image ops from Python threads: on this project's
shared 2-core CPU box the same decode+crop+flip at 224 ran at ~250 img/s
called per example from one Python thread (a tf.function per image) versus
~690 img/s as a one-thread tf.data map (GIL and per-call overhead). This module keeps grain's index-based design and
tf.data's C++ execution.

TensorFlow is imported lazily (first pipeline call) and hidden from GPUs.
"""

from collections.abc import Iterator
import dataclasses

import numpy as np

from mnv2_jax.data import datasets
from mnv2_jax.data import options as options_lib
from mnv2_jax.data import synthetic

_MAX_STEPS = 2**62


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Sizes the trainer needs; counts are global (all processes)."""
  num_classes: int
  num_train: int
  num_eval: int
  image_shape: tuple


def _tf():
  """Imports TensorFlow on first use and keeps it off any accelerator."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError:  # Devices were already initialised; nothing to hide.
    pass
  return tf


def _keys(key, seed: int, process_index: int) -> int:
  """A 63-bit key for one random stream of (run seed, process)."""
  state = np.random.SeedSequence(
      [key, int(seed) & (2**63 - 1), int(process_index)])
  return int(state.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _keys_of(builder) -> tuple[str, str]:
  keys = builder.info.supervised_keys
  if isinstance(keys, (tuple, list)) and len(keys) == 2 and all(
      isinstance(k, str) for k in keys):
    return keys[0], keys[1]
  return "image", "label"


def shuffled_indices(tf, pos, n: int, order_key: int):
  """Record indices of stream positions `pos` (int64 [B]) over `n` records: one fresh
  permutation per epoch, keyed by (order_key, epoch), so position k is a pure function of
  (seed, k). The raw op is used because the public wrapper mis-broadcasts batched seeds
  (TF 2.21). Shared by every training pipeline (classifier, detection, segmentation)."""
  zeros = tf.zeros_like(pos)
  epoch_seeds = tf.stack([zeros + order_key, pos // n, zeros], axis=1)
  return tf.raw_ops.RandomIndexShuffle(
      index=pos % n, seed=epoch_seeds, max_index=zeros + (n - 1), rounds=4)


def dataset_info(cfg) -> DatasetInfo:
  """Dataset sizes and output shape; prepares sklearn_digits if needed.

  Raises:
    datasets.DatasetNotPreparedError: dataset missing (with instructions).
    ValueError: invalid `cfg` field or unknown split.
  """
  opts = options_lib.from_config(cfg)
  shape = (opts.resolution, opts.resolution, 3)
  if opts.is_synthetic:
    n = opts.synthetic_num_examples
    return DatasetInfo(opts.synthetic_num_classes, n, n, shape)
  builder = datasets.get_builder(opts)
  label_key = _keys_of(builder)[1]
  return DatasetInfo(
      num_classes=builder.info.features[label_key].num_classes,
      num_train=datasets.num_examples(builder, opts.train_split),
      num_eval=datasets.num_examples(builder, opts.eval_split),
      image_shape=shape)


def prepare(cfg) -> None:
  """Prepares sklearn_digits, or imagenet2012 from `cfg.manual_dir`."""
  datasets.prepare(options_lib.from_config(cfg))


def _local_batch(global_batch_size: int, process_count: int) -> int:
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise ValueError(f"global_batch_size={global_batch_size} must be a "
                     f"positive multiple of process_count={process_count}.")
  return global_batch_size // process_count


def _reader(tf, source: datasets.RecordSource):
  """Returns a tf function: int64 indices [k] -> serialized records [k]."""
  if source.cached is not None:
    records = tf.constant(source.cached, tf.string)
    return lambda idx: tf.gather(records, idx)

  def read(idx):
    out = tf.py_function(source.read, [idx], tf.string)
    out.set_shape(idx.shape)
    return out
  return read


def _parser(tf, builder):
  """Returns a tf function: serialized record -> (encoded image, label)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  image_key, label_key = _keys_of(builder)
  features = builder.info.features

  def parse(record):
    example = features.deserialize_example(
        record, decoders={image_key: tfds.decode.SkipDecoding()})
    return example[image_key], tf.cast(example[label_key], tf.int32)
  return parse


def _finish(tf, ds, opts: options_lib.InputOptions):
  autotune = tf.data.AUTOTUNE
  if opts.prefetch:
    ds = ds.prefetch(autotune if opts.prefetch < 0 else opts.prefetch)
  options = tf.data.Options()
  options.deterministic = True
  options.autotune.enabled = True
  return ds.with_options(options).as_numpy_iterator()


def make_train_iterator(cfg, *, global_batch_size: int, seed: int,
                        start_step: int = 0, process_index: int = 0,
                        process_count: int = 1) -> Iterator[dict]:
  """Infinite training stream for this process.

  Yields {"image": uint8 [B, H, W, 3], "label": int32 [B]} numpy arrays with
  B = global_batch_size // process_count. The k-th batch yielded is step
  `start_step + k`; it equals step `start_step + k` of a stream started at 0.
  """
  opts = options_lib.from_config(cfg)
  local_batch = _local_batch(global_batch_size, process_count)
  if start_step < 0:
    raise ValueError(f"start_step={start_step} must be >= 0.")
  if opts.is_synthetic:
    return synthetic.train_iterator(
        opts, local_batch=local_batch, seed=seed, start_step=start_step,
        process_index=process_index, process_count=process_count)
  tf = _tf()
  from mnv2_jax.data import preprocessing  # pylint: disable=g-import-not-at-top
  builder = datasets.get_builder(opts)
  split = datasets.process_split(opts.train_split, process_index,
                                 process_count)
  source = datasets.RecordSource(builder, split, cache=opts.cache)
  n = len(source)
  if n == 0:
    raise ValueError(f"Process {process_index}/{process_count} got no "
                     f"examples of {opts.dataset}:{opts.train_split}.")
  order_key = _keys(1, seed, process_index)
  augment_key = _keys(2, seed, process_index)
  read, parse = _reader(tf, source), _parser(tf, builder)

  def batch_records(step):
    pos = step * local_batch + tf.range(local_batch, dtype=tf.int64)
    return read(shuffled_indices(tf, pos, n, order_key)), pos

  def example(record, pos):
    encoded, label = parse(record)
    seed_pair = tf.stack([tf.constant(augment_key, tf.int64), pos])
    image = preprocessing.preprocess_for_train(
        encoded, seed_pair, augment=opts.augment,
        resolution=opts.resolution, crop_area_min=opts.crop_area_min)
    return {"image": image, "label": label}

  parallel = tf.data.AUTOTUNE if opts.num_parallel_calls < 0 else (
      opts.num_parallel_calls)
  ds = tf.data.Dataset.range(start_step, _MAX_STEPS)
  ds = ds.map(batch_records, num_parallel_calls=2)  # Overlaps record reads.
  ds = ds.unbatch().map(example, num_parallel_calls=parallel)
  ds = ds.batch(local_batch, drop_remainder=True)
  return _finish(tf, ds, opts)


class EvalBatches:
  """The eval split as a re-iterable: every `iter()` is one fresh, complete pass.

  The tf.data pipeline (its traced map functions, ~0.3-0.9 s to build on CPU) is built once,
  so a run that evaluates every epoch does not rebuild it every time.
  """

  def __init__(self, make_iterator):
    self._make_iterator = make_iterator

  def __iter__(self) -> Iterator[dict]:
    return self._make_iterator()


def make_eval_iterator(cfg, *, global_batch_size: int, process_index: int = 0,
                       process_count: int = 1) -> Iterator[dict]:
  """One pass over the eval split (`make_eval_batches`, iterated once)."""
  return iter(make_eval_batches(cfg, global_batch_size=global_batch_size,
                                process_index=process_index, process_count=process_count))


def make_eval_batches(cfg, *, global_batch_size: int, process_index: int = 0,
                      process_count: int = 1) -> EvalBatches:
  """Finite eval stream, re-iterable: every example of the split exactly once overall per pass.

  Yields {"image", "label", "mask": bool [B]}; padded slots have mask False,
  a zero image and label 0. Every process yields the same number of batches
  (ceil(largest process shard / B)), so collective eval steps line up.
  Order within a process is the split's stored order (no shuffling).
  """
  opts = options_lib.from_config(cfg)
  local_batch = _local_batch(global_batch_size, process_count)
  if opts.is_synthetic:
    return EvalBatches(lambda: synthetic.eval_iterator(
        opts, local_batch=local_batch, process_index=process_index,
        process_count=process_count))
  tf = _tf()
  from mnv2_jax.data import preprocessing  # pylint: disable=g-import-not-at-top
  builder = datasets.get_builder(opts)
  split = datasets.process_split(opts.eval_split, process_index, process_count)
  source = datasets.RecordSource(builder, split, cache=opts.cache)
  n = len(source)
  max_shard = max(n, datasets.max_shard_size(builder, opts.eval_split,
                                             process_count))
  num_batches = -(-max_shard // local_batch)
  parse = _parser(tf, builder)
  read = _reader(tf, source) if n else None
  shape = (opts.resolution, opts.resolution, 3)

  def batch_records(step):
    pos = step * local_batch + tf.range(local_batch, dtype=tf.int64)
    mask = pos < n
    if read is None:  # This process has no examples: all padding.
      return tf.fill([local_batch], ""), mask
    return read(tf.where(mask, pos, 0)), mask

  def example(record, mask):
    def real():
      encoded, label = parse(record)
      image = preprocessing.preprocess_for_eval(
          encoded, resolution=opts.resolution, crop=opts.eval_crop)
      return image, label
    image, label = tf.cond(
        mask, real, lambda: (tf.zeros(shape, tf.uint8), tf.constant(0)))
    image.set_shape(shape)
    return {"image": image, "label": label, "mask": mask}

  parallel = tf.data.AUTOTUNE if opts.num_parallel_calls < 0 else (
      opts.num_parallel_calls)
  ds = tf.data.Dataset.range(num_batches).map(batch_records)
  ds = ds.unbatch().map(example, num_parallel_calls=parallel)
  ds = ds.batch(local_batch, drop_remainder=True)
  return EvalBatches(lambda: _finish(tf, ds, opts))
