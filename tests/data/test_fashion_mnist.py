"""`fashion_mnist_local` (mnv2_jax/data/fashion_mnist.py).

* Against the real files of Debian's `dataset-fashion-mnist` (`.ci/run` installs it; without it
  these tests fail, never skip): the official counts (60,000 / 10,000), the documented
  train / validation / test rule (55,000 / 5,000 / 10,000), class balance, disjoint and
  covering indices, pixels and labels equal to a direct IDX read, and two training steps of the
  real trainer on it.
* Generated IDX files for the parser's errors: bad magic, truncated data, wrong counts, a label
  out of range, and a missing file naming the apt command.
"""

import collections
import gzip
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mnv2_jax import data
from mnv2_jax.data import datasets
from mnv2_jax.data import fashion_mnist as fm
from mnv2_jax.data import options


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory) -> str:
  """A data_dir with the real fashion_mnist_local prepared (~7-20 s)."""
  missing = fm.missing_files(fm.DEFAULT_DIR)
  assert not missing, f"{missing} not in {fm.DEFAULT_DIR}: run `{fm.APT_COMMAND}`"
  data_dir = os.fspath(tmp_path_factory.mktemp("tfds_fashion"))
  datasets.get_builder(options.InputOptions(dataset="fashion_mnist_local", data_dir=data_dir))
  return data_dir


def _records(builder, split):
  source = builder.as_data_source(split=split, decoders={"image": tfds.decode.SkipDecoding()})
  rows = source.__getitems__(list(range(len(source))))
  return (np.array([int(r["index"]) for r in rows]), np.array([int(r["label"]) for r in rows]))


@pytest.mark.slow(seconds=40)
def test_real_counts_split_rule_and_balance(fashion_dir):
  builder = tfds.builder("fashion_mnist_local", data_dir=fashion_dir)
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
      "train": 55_000, "validation": 5_000, "test": 10_000}
  assert str(builder.info.file_format.value) == "array_record"
  assert builder.info.features["label"].names == list(fm.CLASS_NAMES)
  got = {s: _records(builder, s) for s in ("train", "validation", "test")}
  per_class = {"train": 5_500, "validation": 500, "test": 1_000}
  for split, (_, labels) in got.items():
    assert collections.Counter(labels.tolist()) == {c: per_class[split] for c in range(10)}
  official = fm.load(fm.DEFAULT_DIR)
  assert official["train"][0].shape == (60_000, 28, 28)
  assert official["test"][0].shape == (10_000, 28, 28)
  # Official class balance: 6,000 per class in train, 1,000 in test.
  assert set(np.bincount(official["train"][1]).tolist()) == {6_000}
  assert set(np.bincount(official["test"][1]).tolist()) == {1_000}
  train_rows, val_rows = got["train"][0], got["validation"][0]
  assert not set(train_rows) & set(val_rows)
  assert sorted(np.concatenate([train_rows, val_rows]).tolist()) == list(range(60_000))
  assert sorted(got["test"][0].tolist()) == list(range(60_000, 70_000))
  # The rule: validation = the last 500 rows of each class in the official file.
  labels = official["train"][1]
  for c in range(10):
    rows_c = np.flatnonzero(labels == c)
    assert set(rows_c[-500:]) <= set(val_rows) and not set(rows_c[:-500]) & set(val_rows)
  # Labels of every record, and pixels of a spread of records, equal the IDX files.
  for split, (rows, lab) in got.items():
    src = "test" if split == "test" else "train"
    offset = 60_000 if split == "test" else 0
    np.testing.assert_array_equal(lab, official[src][1][rows - offset])
  source = builder.as_data_source(split="test")
  for i in (0, 1, 4_999, 9_999):
    ex = source[i]
    row = int(ex["index"]) - 60_000
    assert ex["image"].shape == (28, 28, 1)
    np.testing.assert_array_equal(ex["image"][..., 0], official["test"][0][row])
  assert official["test"][0].std() > 50  # Real images, not a blank.


@pytest.mark.slow(seconds=60)
def test_trainer_runs_on_it(fashion_dir, tmp_path):
  from configs import digits as digits_config  # pylint: disable=g-import-not-at-top
  from mnv2_jax import train  # pylint: disable=g-import-not-at-top
  config = digits_config.get_config("batch=16")
  config.input.update(dataset="fashion_mnist_local", data_dir=fashion_dir,
                      eval_split="validation[:256]", eval_batch_size=128)
  config.train.update(num_steps=2, log_every_steps=1, checkpoint_every_steps=2,
                      eval_every_steps=2)
  config.optim.warmup_epochs = 0.0
  config.wandb.mode = "disabled"
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert 0.0 <= summary["final/top1"] <= 1.0 and np.isfinite(summary["final/loss"])
  assert data.dataset_info(config.input).num_train == 55_000


def _write_idx(path, magic: int, shape, payload: bytes | None = None):
  header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in shape)
  body = payload if payload is not None else bytes(int(np.prod(shape)))
  with gzip.open(path, "wb") as f:
    f.write(header + body)


def _fake_dir(root, *, images=None, labels=None):
  """A source dir with valid small-header files of the official counts (zeros)."""
  root.mkdir(exist_ok=True)
  for split, (img, lab) in fm.FILES.items():
    n = fm.COUNTS[split]
    _write_idx(root / img, 0x803, (n, 28, 28))
    _write_idx(root / lab, 0x801, (n,))
  if images:
    _write_idx(root / fm.FILES["test"][0], *images)
  if labels:
    _write_idx(root / fm.FILES["test"][1], *labels)
  return os.fspath(root)


@pytest.mark.parametrize("images, labels, message", [
    ((0x801, (10_000, 28, 28)), None, "magic number 0x801, expected 0x00000803"),
    ((0x803, (10_000, 28, 28), bytes(100)), None, "100 data bytes, expected 7840000"),
    ((0x803, (9_999, 28, 28)), None, "dimension 0 is 9999, expected 10000"),
    ((0x803, (10_000, 28, 27)), None, "dimension 2 is 27, expected 28"),
    (None, (0x801, (10_000,), bytes([10]) * 10_000), "label 10 outside 0..9"),
], ids=["bad_magic", "truncated", "count", "side", "label_range"])
def test_malformed_files_are_named(tmp_path, images, labels, message):
  source = _fake_dir(tmp_path / "src", images=images, labels=labels)
  with pytest.raises(fm.IdxError, match="t10k-") as e:
    fm.load(source)
  assert message in str(e.value)


def test_missing_files_give_the_apt_command(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  opts = options.InputOptions(dataset="fashion_mnist_local", data_dir=os.fspath(tmp_path / "d"),
                              manual_dir=os.fspath(empty))
  with pytest.raises(data.DatasetNotPreparedError) as e:
    datasets.get_builder(opts)
  for text in ("apt-get install -y dataset-fashion-mnist", "config.input.manual_dir",
               "train-images-idx3-ubyte.gz", os.fspath(empty)):
    assert text in str(e.value)
  assert not (tmp_path / "d" / "fashion_mnist_local").exists()
