"""TFDS builders: preparation rules, split metadata and random-access sources.

Policy (big_vision's, not scenic's): nothing is downloaded implicitly. The
only builders prepared automatically are the offline ones:
  * `sklearn_digits` (ships inside scikit-learn; prepared on first use);
  * `fashion_mnist_local` (local IDX files: Debian's `dataset-fashion-mnist` or
    `config.input.manual_dir`; prepared on first use);
  * `imagenet2012` from a manual download, but only when `prepare(cfg)` is
    called explicitly.
Everything else must be prepared by the user with `tfds build`.

`prepare` is safe when many processes (one host or several sharing the
data_dir) prepare the same dataset at once: it builds into a private staging
dir and publishes the version dir with one atomic rename (publish.py).

The pipeline reads records by index (see pipeline.py for why), so datasets
must be prepared in the ArrayRecord file format. A dataset prepared as
TFRecord gets an error that says how to convert it.
"""

import dataclasses
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from mnv2_jax.data import digits
from mnv2_jax.data import fashion_mnist
from mnv2_jax.data import options as options_lib
from mnv2_jax.data import publish

ARRAY_RECORD = "array_record"
_IMAGENET = "imagenet2012"
_IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


# Prepared on first use: they need no network.
_OFFLINE = (digits.SklearnDigits.name, fashion_mnist.FashionMnistLocal.name)


class DatasetNotPreparedError(RuntimeError):
  """The requested TFDS dataset is not available under `data_dir`."""


def _base_name(dataset: str) -> str:
  return dataset.split("/")[0].split(":")[0]


def _manual_dir(opts: options_lib.InputOptions, builder) -> str:
  if opts.manual_dir:
    return opts.manual_dir
  return os.path.join(os.fspath(builder.data_dir_root), "downloads", "manual")


def _imagenet_instructions(opts, builder) -> str:
  manual_dir = os.fspath(_manual_dir(opts, builder))
  return (
      f"imagenet2012 needs a manual download. Get {_IMAGENET_TARS[0]} "
      f"(~138 GB, 1000 per-synset tars inside) and {_IMAGENET_TARS[1]} "
      "(~6.3 GB) from https://image-net.org/download-images (free "
      "registration), put both files unextracted into the manual dir "
      f"{manual_dir!r} (config.input.manual_dir; default "
      "<data_dir>/downloads/manual), then run mnv2_jax.data.prepare(config."
      "input) once, or equivalently `tfds build imagenet2012 --data_dir="
      f"{os.fspath(builder.data_dir_root)} --manual_dir=<dir> --file_format="
      f"{ARRAY_RECORD}`. Only the splits whose tar is present are built.")


def _builder(opts: options_lib.InputOptions, file_format: str | None = None):
  kwargs = {"data_dir": opts.data_dir}
  if file_format:
    kwargs["file_format"] = file_format
  return tfds.builder(opts.dataset, **kwargs)


def prepare(opts: options_lib.InputOptions) -> None:
  """Prepares an offline-preparable dataset as ArrayRecord (no-op if done).

  Safe when many processes (on one or several hosts sharing `data_dir`) call
  it at once: each builds into a private staging dir under `data_dir` and
  the finished version dir is published with one atomic rename; the losers
  reuse the winner's (see publish.py for the guarantees and limits).

  Raises:
    DatasetNotPreparedError: the dataset cannot be prepared offline (with
      instructions), or a non-empty but incomplete version dir is in the way.
  """
  if opts.is_synthetic:
    return
  builder = _builder(opts, file_format=ARRAY_RECORD)
  if builder.is_prepared():
    return
  name = _base_name(opts.dataset)
  if name == digits.SklearnDigits.name:
    download_config = None
  elif name == fashion_mnist.FashionMnistLocal.name:
    source_dir = opts.manual_dir or fashion_mnist.DEFAULT_DIR
    missing = fashion_mnist.missing_files(source_dir)
    if missing:
      raise DatasetNotPreparedError(f"Missing {missing} in {source_dir!r}. "
                                    + fashion_mnist.instructions(source_dir))
    download_config = tfds.download.DownloadConfig(manual_dir=source_dir)
  elif name == _IMAGENET:
    manual_dir = os.fspath(_manual_dir(opts, builder))
    # tfds 4.9.10 reads the val tar's file list even when building only the
    # train split, so it is required; the train tar is optional (eval-only).
    if not os.path.exists(os.path.join(manual_dir, _IMAGENET_TARS[1])):
      raise DatasetNotPreparedError(
          f"No ImageNet tars found in {manual_dir!r} ({_IMAGENET_TARS[1]} "
          "is required). " + _imagenet_instructions(opts, builder))
    download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
  else:
    raise DatasetNotPreparedError(
        f"mnv2_jax never downloads {opts.dataset!r} implicitly. Prepare it "
        f"once with `tfds build {opts.dataset} --data_dir="
        f"{os.fspath(builder.data_dir_root)} --file_format={ARRAY_RECORD}` "
        "(needs "
        "network), or copy a prepared data_dir onto this machine.")

  def build(staging_root: str) -> None:
    staged = _builder(dataclasses.replace(opts, data_dir=staging_root),
                      file_format=ARRAY_RECORD)
    staged.download_and_prepare(download_config=download_config)

  root = os.fspath(builder.data_dir_root)
  try:
    published = publish.publish_dir(
        root, os.path.relpath(os.fspath(builder.data_path), root), build,
        builder.is_prepared)
  except publish.PublishError as e:
    raise DatasetNotPreparedError(f"Cannot prepare {opts.dataset!r}: {e}") from e
  # TFDS logged the staging path; say where the dataset really is.
  logging.info("%s %s in %s", opts.dataset,
               "published" if published else "prepared concurrently by another "
               "process, reused", os.fspath(builder.data_path))


def get_builder(opts: options_lib.InputOptions):
  """Returns the prepared builder; prepares sklearn_digits on first use.

  Raises:
    DatasetNotPreparedError: with instructions, if the dataset is missing or
      was prepared in a file format other than ArrayRecord.
  """
  builder = _builder(opts)
  if not builder.is_prepared():
    if _base_name(opts.dataset) in _OFFLINE:
      prepare(opts)
      builder = _builder(opts)
    elif _base_name(opts.dataset) == _IMAGENET:
      raise DatasetNotPreparedError(
          "imagenet2012 is not prepared in "
          f"{os.fspath(builder.data_dir_root)!r}. "
          + _imagenet_instructions(opts, builder))
    else:
      prepare(opts)  # Raises with the `tfds build` command to run.
  file_format = getattr(builder.info.file_format, "value",
                        builder.info.file_format)
  if file_format != ARRAY_RECORD:
    raise DatasetNotPreparedError(
        f"{opts.dataset!r} in {os.fspath(builder.data_dir_root)!r} is stored "
        "as "
        f"{file_format!r}, but the input pipeline reads records by index and "
        f"needs {ARRAY_RECORD!r}. Rebuild it with `tfds build {opts.dataset} "
        f"--file_format={ARRAY_RECORD}` (imagenet2012: mnv2_jax.data.prepare) "
        "or convert it in place with `tfds convert_format "
        f"--dataset_version_dir={builder.data_dir} --out_file_format="
        f"{ARRAY_RECORD}` (that command needs `pip install apache-beam`).")
  return builder


def num_examples(builder, split: str) -> int:
  """Number of examples of `split` (any TFDS split expression)."""
  try:
    return builder.info.splits[split].num_examples
  except (KeyError, ValueError) as e:
    raise ValueError(
        f"Split {split!r} is not available for {builder.name!r}; known "
        f"splits: {sorted(builder.info.splits.keys())}.") from e


def process_split(split: str, process_index: int, process_count: int):
  """This process's contiguous, near-equal part of `split` (even_splits)."""
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} must be in "
                     f"[0, process_count={process_count}).")
  return tfds.split_for_jax_process(
      split, process_index=process_index, process_count=process_count)


def max_shard_size(builder, split: str, process_count: int) -> int:
  """Largest per-process shard of `split`; sizes every eval stream equally."""
  return max(num_examples(builder, process_split(split, i, process_count))
             for i in range(process_count))


class RecordSource:
  """Random access to one process's raw serialized records of a split.

  `read(indices)` returns a numpy object array of serialized tf.train.Example
  bytes; parsing and decoding happen later inside tf.data (C++, parallel).
  With `cache=True` all records are read once and kept in memory.
  """

  def __init__(self, builder, split, *, cache: bool = False):
    # An empty shard (more processes than examples) has no files to open.
    self._source = [] if num_examples(builder, split) == 0 else (
        builder.as_data_source(
            split=split,
            deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES))
    self._cached = None
    if cache:
      self._cached = self.read(np.arange(len(self._source)))

  def __len__(self) -> int:
    return len(self._source)

  @property
  def cached(self) -> np.ndarray | None:
    return self._cached

  def read(self, indices) -> np.ndarray:
    indices = [int(i) for i in np.asarray(indices).reshape(-1)]
    if self._cached is not None:
      return self._cached[indices]
    out = np.empty(len(indices), dtype=object)
    if not indices:
      return out
    try:  # Batched read: ArrayRecord fetches the records in parallel.
      records = self._source.__getitems__(indices)
    except TypeError:
      # `tfds.testing.mock_data` (4.9.10) installs an unbound __getitems__ on
      # its fake reader; per-record reads work there.
      records = [self._source[i] for i in indices]
    out[:] = list(records)
    return out
