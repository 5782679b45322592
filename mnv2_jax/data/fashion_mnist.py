"""`fashion_mnist_local`: Fashion-MNIST from local IDX files as an offline TFDS set.

Why this exists: a real dataset larger than the 1,797 digits that still needs no network.
Debian's package `dataset-fashion-mnist` (`apt-get install -y dataset-fashion-mnist`, Expat
licence, ~30 MB) installs the full Fashion-MNIST (Xiao et al. 2017: 60,000 train + 10,000 test
28x28 grayscale images of 10 clothing classes) as the four standard IDX gzip files under
`DEFAULT_DIR`. Users elsewhere download the same four files by hand (github.com/zalandoresearch/
fashion-mnist) and point `config.input.manual_dir` at their folder: the source directory is the
dataset's manual dir, as ImageNet's tars are (one typed option, no environment variable).

Features:
  image: uint8 (28, 28, 1), PNG-encoded (`digits.encode_png_gray`: stdlib, no TensorFlow).
  label: ClassLabel(10), the official class names (`CLASS_NAMES`, label order).
  index: int32, the example's row in its official file; test rows are offset by 60,000 so that
    every example of the dataset has its own index.

Splits (deterministic, documented rule):
  test: the official 10,000 test images.
  validation: of the official training file, the last `VALIDATION_PER_CLASS` (500) examples of
    each class in file order: 5,000, balanced.
  train: the other 55,000 official training images (5,500 per class).
  (The classic MNIST 55,000 / 5,000 split sizes; the test set stays untouched for the paper's
  "evaluate once" use.) The official counts are verified at preparation (`load`); the class
  balance of every split is checked by tests/data/test_fashion_mnist.py.

Errors: a missing file names the directory, the file and the apt command; a malformed file
(wrong magic number, dimensions, truncated data, counts that do not match) names the file and
what was wrong, before anything is written.

Preparation (70,000 PNGs into ArrayRecord): 7.4 s on the 2-core box (2026-12-01, another
job running beside it).
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import tensorflow_datasets as tfds

from mnv2_jax.data import digits

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
APT_COMMAND = "apt-get install -y dataset-fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
COUNTS = {"train": 60_000, "test": 10_000}
SIDE = 28
VALIDATION_PER_CLASS = 500
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801


class IdxError(ValueError):
  """A missing or malformed IDX file (the message names it and says what is wrong)."""


def read_idx(path: str, magic: int, dims: tuple[int | None, ...]) -> np.ndarray:
  """Reads a gzipped IDX file of unsigned bytes; checks its magic number and dimensions.

  `dims` are the expected sizes (None: any). Raises IdxError naming the file.
  """
  try:
    with gzip.open(path, "rb") as f:
      data = f.read()
  except FileNotFoundError:
    raise IdxError(f"{path} not found") from None
  except (OSError, EOFError) as e:
    raise IdxError(f"{path} is not a readable gzip file: {e}") from None
  if len(data) < 4 or int.from_bytes(data[:4], "big") != magic:
    got = hex(int.from_bytes(data[:4], "big")) if len(data) >= 4 else "nothing"
    raise IdxError(f"{path}: magic number {got}, expected {magic:#010x} (IDX unsigned bytes, "
                   f"{magic & 0xff} dimensions)")
  ndim = magic & 0xff
  header = 4 + 4 * ndim
  if len(data) < header:
    raise IdxError(f"{path}: truncated header ({len(data)} bytes)")
  shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
  for i, (got, want) in enumerate(zip(shape, dims)):
    if want is not None and got != want:
      raise IdxError(f"{path}: dimension {i} is {got}, expected {want}")
  size = int(np.prod(shape))
  if len(data) - header != size:
    raise IdxError(f"{path}: {len(data) - header} data bytes, expected {size} for shape "
                   f"{shape} (truncated or padded file)")
  return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def missing_files(source_dir: str) -> list[str]:
  return [n for pair in FILES.values() for n in pair
          if not os.path.isfile(os.path.join(source_dir, n))]


def instructions(source_dir: str) -> str:
  return (f"fashion_mnist_local reads the Fashion-MNIST IDX files from {source_dir!r} "
          f"(config.input.manual_dir; default {DEFAULT_DIR}, where `{APT_COMMAND}` installs "
          f"them). Elsewhere, download {', '.join(n for p in FILES.values() for n in p)} from "
          "https://github.com/zalandoresearch/fashion-mnist into one folder and set "
          "config.input.manual_dir to it.")


def load(source_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """The official splits as {"train"|"test": (images (N, 28, 28) uint8, labels (N,) uint8)}."""
  missing = missing_files(source_dir)
  if missing:
    raise IdxError(f"missing {missing} in {source_dir!r}. " + instructions(source_dir))
  out = {}
  for split, (images_name, labels_name) in FILES.items():
    n = COUNTS[split]
    images = read_idx(os.path.join(source_dir, images_name), _IMAGES_MAGIC, (n, SIDE, SIDE))
    labels = read_idx(os.path.join(source_dir, labels_name), _LABELS_MAGIC, (n,))
    if labels.max() >= len(CLASS_NAMES):
      raise IdxError(f"{labels_name}: label {int(labels.max())} outside 0..9")
    out[split] = (images, labels)
  return out


def split_indices(train_labels: np.ndarray) -> dict[str, np.ndarray]:
  """Rows of the official training file in `train` and `validation` (module docstring rule)."""
  validation = np.sort(np.concatenate([
      np.flatnonzero(train_labels == c)[-VALIDATION_PER_CLASS:]
      for c in range(len(CLASS_NAMES))]))
  train = np.setdiff1d(np.arange(len(train_labels)), validation)
  return {"train": train, "validation": validation}


class FashionMnistLocal(tfds.core.GeneratorBasedBuilder):
  """Fashion-MNIST from local IDX files (the manual dir), prepared fully offline."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Official test; validation = last 500 of each class in train."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = instructions(DEFAULT_DIR)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=("Fashion-MNIST (Zalando), 28x28 grayscale, 10 classes, read from the "
                     "local IDX files. train 55,000 / validation 5,000 (last 500 per class "
                     "of the official train file) / test 10,000 (official)."),
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(SIDE, SIDE, 1), dtype=np.uint8,
                                         encoding_format="png"),
            "label": tfds.features.ClassLabel(names=list(CLASS_NAMES)),
            "index": np.int32,
        }),
        supervised_keys=("image", "label"),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        citation=("@article{xiao2017fashion, title={Fashion-MNIST: a Novel Image Dataset for "
                  "Benchmarking Machine Learning Algorithms}, author={Xiao, Han and Rasul, "
                  "Kashif and Vollgraf, Roland}, journal={arXiv:1708.07747}, year={2017}}"),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    data = load(os.fspath(dl_manager.manual_dir))
    train_images, train_labels = data["train"]
    rows = split_indices(train_labels)
    test_images, test_labels = data["test"]
    return {
        "train": self._generate_examples(train_images, train_labels, rows["train"], 0),
        "validation": self._generate_examples(train_images, train_labels,
                                              rows["validation"], 0),
        "test": self._generate_examples(test_images, test_labels,
                                        np.arange(len(test_labels)), COUNTS["train"]),
    }

  def _generate_examples(self, images, labels, rows, offset: int):
    for i in rows:
      key = int(i) + offset
      yield key, {"image": digits.encode_png_gray(images[i]), "label": int(labels[i]),
                  "index": key}
