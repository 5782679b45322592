"""The offline `sklearn_digits` TFDS builder: registration, splits, content."""

import io
import subprocess
import sys

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

import mnv2_jax.data  # pylint: disable=unused-import  # Registers the builder.
from mnv2_jax.data import digits


def test_import_registers_builder_without_importing_tensorflow():
  code = ("import sys, tensorflow_datasets as tfds, mnv2_jax.data; "
          "b = tfds.builder('sklearn_digits', data_dir='/nonexistent'); "
          "print(b.version, 'tensorflow' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True).stdout.split()
  assert out == ["1.0.0", "False"]


def test_encode_png_gray_round_trips():
  image = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
  decoded = np.asarray(Image.open(io.BytesIO(digits.encode_png_gray(image))))
  np.testing.assert_array_equal(decoded, image)


def test_scale_to_uint8_endpoints_and_rounding():
  np.testing.assert_array_equal(digits.scale_to_uint8([0, 1, 8, 16]),
                                [0, 16, 128, 255])  # 15.94->16, 127.5->128


def test_split_rule_counts_disjoint_covering_stratified():
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  labels = datasets.load_digits().target
  splits = digits.split_indices()
  train, test = splits["train"], splits["test"]
  assert (len(train), len(test)) == (digits.NUM_TRAIN, digits.NUM_TEST)
  assert not set(train) & set(test)
  np.testing.assert_array_equal(np.sort(np.concatenate([train, test])),
                                np.arange(digits.NUM_EXAMPLES))
  test_counts = np.bincount(labels[test], minlength=10)
  all_counts = np.bincount(labels, minlength=10)
  assert np.all(np.abs(test_counts - 0.2 * all_counts) <= 1)
  # Pinned (scikit-learn 1.9.1): the rule must not drift unnoticed.
  np.testing.assert_array_equal(test[:8], [21, 24, 28, 34, 35, 37, 39, 42])


def test_prepared_dataset_matches_sklearn(digits_dir):
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  ref = datasets.load_digits()
  builder = tfds.builder("sklearn_digits", data_dir=digits_dir)
  assert builder.info.splits["train"].num_examples == 1437
  assert builder.info.splits["test"].num_examples == 360
  assert builder.info.features["label"].num_classes == 10
  assert str(builder.info.file_format.value) == "array_record"
  seen = []
  for split in ("train", "test"):
    source = builder.as_data_source(split=split)
    expected = set(digits.split_indices()[split])
    for ex in source:
      i = int(ex["index"])
      assert i in expected
      assert ex["image"].shape == (8, 8, 1) and ex["image"].dtype == np.uint8
      np.testing.assert_array_equal(ex["image"][..., 0],
                                    digits.scale_to_uint8(ref.images[i]))
      assert ex["label"] == ref.target[i]
      seen.append(i)
  assert sorted(seen) == list(range(1797))
