"""Input pipeline contracts: shapes, sharding, exact eval, exact resume.

Real data throughout (sklearn_digits, the real imagenet2012 builder on a
miniature manual download); `tfds.testing.mock_data` with the committed real
imagenet2012 metadata for full-size split bookkeeping.
"""

import hashlib
import itertools
import os

from tfds_fixtures import input_config
from tfds_fixtures import METADATA_DIR
import numpy as np
import pytest
import tensorflow_datasets as tfds

import mnv2_jax.data as data
from mnv2_jax.data import datasets
from mnv2_jax.data import options


def _take(it, n):
  return list(itertools.islice(it, n))


def _hashes(batches):
  """Multiset of (image hash, label) over the masked-in examples."""
  out = []
  for b in batches:
    for image, label, keep in zip(b["image"], b["label"], b["mask"]):
      if keep:
        out.append((hashlib.sha1(image.tobytes()).hexdigest(), int(label)))
  return sorted(out)


def _imagenet_cfg(data_dir, **kw):
  base = dict(dataset="imagenet2012", data_dir=data_dir, resolution=32,
              augment="inception_crop_flip", eval_split="validation",
              eval_crop=0.875)
  base.update(kw)
  return input_config(**base)


@pytest.mark.parametrize("field,value", [
    ("augment", "flip"), ("crop_area_min", 0.0), ("eval_crop", 1.5),
    ("resolution", 0), ("num_parallel_calls", 0), ("prefetch", -2),
    ("cache", "yes"), ("train_split", ""), ("dataset", None)])
def test_invalid_field_raises_naming_it(field, value):
  with pytest.raises(ValueError, match=f"config.input.{field}="):
    # A plain dict: ConfigDict's own type safety would reject some first.
    options.from_config({**input_config().to_dict(), field: value})


def test_batch_must_divide_over_processes(digits_dir):
  with pytest.raises(ValueError, match="multiple of process_count"):
    data.make_train_iterator(input_config(data_dir=digits_dir),
                             global_batch_size=9, seed=0, process_count=2)


def test_digits_info_and_train_batches(digits_dir):
  cfg = input_config(data_dir=digits_dir, resolution=32)
  assert data.dataset_info(cfg) == data.DatasetInfo(10, 1437, 360,
                                                    (32, 32, 3))
  batch = next(data.make_train_iterator(cfg, global_batch_size=32, seed=0))
  assert set(batch) == {"image", "label"}
  assert batch["image"].shape == (32, 32, 32, 3)
  assert batch["image"].dtype == np.uint8 and batch["label"].dtype == np.int32
  assert set(batch["label"]) <= set(range(10)) and len(set(batch["label"])) > 3
  assert batch["image"].max() == 255 and batch["image"].min() == 0


def test_resume_equals_uninterrupted_stream_across_epoch_boundary(digits_dir):
  # 2 processes x 32 = 64 global; shard of 719 -> epoch boundary in step 22.
  cfg = input_config(data_dir=digits_dir)
  kw = dict(global_batch_size=64, seed=3, process_index=1, process_count=2)
  full = _take(data.make_train_iterator(cfg, **kw), 26)
  resumed = _take(data.make_train_iterator(cfg, start_step=21, **kw), 5)
  for a, b in zip(full[21:], resumed):
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["label"], b["label"])
  other_seed = next(data.make_train_iterator(cfg, **{**kw, "seed": 4}))
  assert not np.array_equal(other_seed["image"], full[0]["image"])


def test_cache_does_not_change_the_stream(digits_dir):
  kw = dict(global_batch_size=16, seed=0, start_step=5)
  plain = next(data.make_train_iterator(input_config(data_dir=digits_dir),
                                        **kw))
  cached = next(data.make_train_iterator(
      input_config(data_dir=digits_dir, cache=True, num_parallel_calls=-1),
      **kw))
  np.testing.assert_array_equal(plain["image"], cached["image"])


def test_process_shards_disjoint_and_covering(digits_dir):
  builder = tfds.builder("sklearn_digits", data_dir=digits_dir)
  for count in (1, 2, 3):
    shards = [
        [int(ex["index"]) for ex in builder.as_data_source(
            split=datasets.process_split("train", i, count))]
        for i in range(count)]
    assert sum(map(len, shards)) == 1437
    assert sorted(itertools.chain(*shards)) == sorted(
        int(ex["index"]) for ex in builder.as_data_source(split="train"))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_eval_exact_over_two_processes_with_padding(digits_dir):
  cfg = input_config(data_dir=digits_dir)
  single = list(data.make_eval_iterator(cfg, global_batch_size=64))
  assert sum(int(b["mask"].sum()) for b in single) == 360
  per_process = [list(data.make_eval_iterator(
      cfg, global_batch_size=100, process_index=i, process_count=2))
                 for i in range(2)]
  assert len(per_process[0]) == len(per_process[1]) == 4  # ceil(180 / 50)
  for batches in per_process:
    for b in batches:
      assert b["image"].shape == (50, 16, 16, 3) and b["mask"].dtype == bool
      padded = ~b["mask"]
      assert not b["image"][padded].any() and not b["label"][padded].any()
  assert _hashes(per_process[0] + per_process[1]) == _hashes(single)


@pytest.mark.parametrize("dataset", ["sklearn_digits", "synthetic"])
def test_eval_batches_every_pass_is_the_whole_split_in_order(digits_dir, dataset):
  """The trainer builds the eval pipeline once and iterates it at every evaluation."""
  cfg = (input_config(data_dir=digits_dir) if dataset == "sklearn_digits" else input_config(
      dataset="synthetic", resolution=8, synthetic_num_examples=10, synthetic_num_classes=3))
  split = data.make_eval_batches(cfg, global_batch_size=64)
  once = list(data.make_eval_iterator(cfg, global_batch_size=64))
  first, second = list(split), list(split)
  assert sum(int(b["mask"].sum()) for b in first) == (360 if dataset == "sklearn_digits" else 10)
  for passes in (first, second):
    assert len(passes) == len(once)
    for a, b in zip(passes, once):
      for key in ("image", "label", "mask"):
        np.testing.assert_array_equal(a[key], b[key])


def test_eval_unequal_shards_yield_equal_batch_counts(imagenet_dir):
  # 7 validation images over 2 processes: shards of 4 and 3.
  cfg = _imagenet_cfg(imagenet_dir[0])
  single = list(data.make_eval_iterator(cfg, global_batch_size=7))
  assert [int(b["mask"].sum()) for b in single] == [7]
  per_process = [list(data.make_eval_iterator(
      cfg, global_batch_size=2, process_index=i, process_count=2))
                 for i in range(2)]
  assert [[int(b["mask"].sum()) for b in p] for p in per_process] == [
      [1, 1, 1, 1], [1, 1, 1, 0]]
  assert _hashes(per_process[0] + per_process[1]) == _hashes(single)
  # 8 processes over 7 examples: the last process has an empty shard.
  last = list(data.make_eval_iterator(cfg, global_batch_size=8,
                                      process_index=7, process_count=8))
  assert len(last) == 1 and not last[0]["mask"].any()
  assert not last[0]["image"].any()


def test_mock_imagenet_uses_real_metadata_and_jpeg_path():
  cfg = _imagenet_cfg("/nonexistent/data_dir", resolution=64)
  with tfds.testing.mock_data(num_examples=6, data_dir=METADATA_DIR,
                              policy=tfds.testing.MockPolicy.USE_FILES):
    info = data.dataset_info(cfg)
    assert info == data.DatasetInfo(1000, 1_281_167, 50_000, (64, 64, 3))
    builder = datasets.get_builder(options.from_config(cfg))
    assert builder.info.features["image"].encoding_format == "jpeg"
    assert datasets.max_shard_size(builder, "validation", 3) == 16_667
    train = next(data.make_train_iterator(cfg, global_batch_size=4, seed=0,
                                          process_index=1, process_count=2))
    assert train["image"].shape == (2, 64, 64, 3)
    assert train["image"].dtype == np.uint8
    assert np.all((0 <= train["label"]) & (train["label"] < 1000))
    ev = next(data.make_eval_iterator(cfg, global_batch_size=4))
    assert ev["image"].shape == (4, 64, 64, 3) and ev["mask"].all()


def test_imagenet_not_prepared_error_says_how(tmp_path):
  cfg = _imagenet_cfg(os.fspath(tmp_path / "empty"))
  with pytest.raises(data.DatasetNotPreparedError,
                     match="ILSVRC2012_img_train.tar.*ILSVRC2012_img_val.tar"):
    data.dataset_info(cfg)
  with pytest.raises(data.DatasetNotPreparedError, match="No ImageNet tars"):
    data.prepare(cfg)
  assert not (tmp_path / "empty" / "imagenet2012").exists() or not any(
      (tmp_path / "empty" / "imagenet2012").rglob("*.array_record*"))


def test_other_dataset_is_never_downloaded(tmp_path):
  cfg = input_config(dataset="cifar10", data_dir=os.fspath(tmp_path))
  with pytest.raises(data.DatasetNotPreparedError, match="tfds build cifar10"):
    data.dataset_info(cfg)
  assert not list(tmp_path.rglob("*.array_record*"))


def test_tfrecord_dataset_gets_conversion_hint(tmp_path):
  tfds.builder("sklearn_digits", data_dir=os.fspath(tmp_path),
               file_format="tfrecord").download_and_prepare()
  with pytest.raises(data.DatasetNotPreparedError,
                     match="stored as 'tfrecord'.*--file_format=array_record"):
    data.dataset_info(input_config(data_dir=os.fspath(tmp_path)))


def test_real_imagenet_builder_end_to_end(imagenet_dir):
  data_dir, expected = imagenet_dir
  cfg = _imagenet_cfg(data_dir)
  assert data.dataset_info(cfg) == data.DatasetInfo(1000, 10, 7, (32, 32, 3))
  train = next(data.make_train_iterator(cfg, global_batch_size=4, seed=0))
  assert train["image"].shape == (4, 32, 32, 3)
  assert set(train["label"]) <= {0, 1}  # n01440764 -> 0, n01443537 -> 1.
  # Validation labels come from TFDS's validation_labels.txt (line i).
  labels_file = os.path.join(os.path.dirname(tfds.__file__), "datasets",
                             "imagenet2012", "validation_labels.txt")
  names = tfds.builder("imagenet2012", data_dir=data_dir).info.features[
      "label"].names
  with open(labels_file) as f:
    wnids = [line.strip() for line in f][:len(expected["validation"])]
  ev = list(data.make_eval_iterator(cfg, global_batch_size=8))
  got = sorted(int(l) for b in ev for l, m in zip(b["label"], b["mask"]) if m)
  assert got == sorted(names.index(w) for w in wnids)


def test_each_epoch_is_a_permutation_of_the_process_shard(imagenet_dir):
  data_dir, _ = imagenet_dir
  # augment="none" + eval_crop=1 produce identical pixels for one record.
  cfg = _imagenet_cfg(data_dir, augment="none", eval_crop=1.0,
                      eval_split="train")
  for index in range(2):
    kw = dict(process_index=index, process_count=2)
    shard = _hashes(data.make_eval_iterator(cfg, global_batch_size=2, **kw))
    assert len(shard) == 5
    batches = _take(data.make_train_iterator(cfg, global_batch_size=10,
                                             seed=0, **kw), 2)
    for b in batches:  # Local batch 5 = one full epoch of the shard.
      b["mask"] = np.ones(5, bool)
      assert _hashes([b]) == shard
    assert not np.array_equal(batches[0]["label"], batches[1]["label"]) or (
        not np.array_equal(batches[0]["image"], batches[1]["image"]))


def test_synthetic_mode(tmp_path):
  cfg = input_config(dataset="synthetic", resolution=8,
                     synthetic_num_examples=10, synthetic_num_classes=3)
  assert data.dataset_info(cfg) == data.DatasetInfo(3, 10, 10, (8, 8, 3))
  stream = _take(data.make_train_iterator(cfg, global_batch_size=4, seed=0), 4)
  resumed = next(data.make_train_iterator(cfg, global_batch_size=4, seed=0,
                                          start_step=3))
  np.testing.assert_array_equal(stream[3]["image"], resumed["image"])
  assert stream[0]["image"].dtype == np.uint8 and stream[0]["label"].max() < 3
  ev = [list(data.make_eval_iterator(cfg, global_batch_size=4,
                                     process_index=i, process_count=2))
        for i in range(2)]
  assert len(ev[0]) == len(ev[1]) == 3
  assert sum(int(b["mask"].sum()) for b in ev[0] + ev[1]) == 10
