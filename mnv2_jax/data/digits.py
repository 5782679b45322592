"""`sklearn_digits`: scikit-learn's handwritten digits as an offline TFDS set.

Why this exists: every other image dataset the project uses needs a download
(or a 150 GB manual one). The 1,797 real 8x8 digit scans that ship inside
scikit-learn (`sklearn.datasets.load_digits`, the UCI "optdigits" test set)
give CI and laptops a real, learnable dataset that prepares offline in well
under a second and goes through exactly the same TFDS -> ArrayRecord ->
input-pipeline path as ImageNet.

Features:
  image: uint8 (8, 8, 1), PNG-encoded. The raw values are integers 0..16
    (counts of set pixels in 4x4 blocks); they are scaled to 0..255 with
    `round(v * 255 / 16)` (round-half-to-even, numpy), so 0 -> 0, 16 -> 255.
  label: ClassLabel(10), names "0".."9".
  index: int32, the row in `load_digits()`; lets tests prove that splits are
    disjoint and covering, and that per-process shards are too.

Splits (deterministic, documented rule):
  `sklearn.model_selection.train_test_split(arange(1797), test_size=0.2,
  stratify=labels, random_state=0, shuffle=True)` -> train 1,437 / test 360
  examples, stratified by class. Examples are generated in increasing `index`
  order within each split, so the content does not depend on the split
  RNG beyond set membership; TFDS then writes them in its own deterministic
  (hash-of-key) order. Keys are the `load_digits` row indices.

Registration: importing this module (done by `import mnv2_jax.data`)
registers the builder, after which `tfds.builder("sklearn_digits",
data_dir=...)` works.
"""

import struct
import zlib

import numpy as np
import tensorflow_datasets as tfds

NUM_EXAMPLES = 1797
NUM_TRAIN = 1437
NUM_TEST = 360
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def scale_to_uint8(values: np.ndarray) -> np.ndarray:
  """Maps the 0..16 digit intensities to uint8 0..255 (round half to even)."""
  return np.round(np.asarray(values, np.float64) * (255.0 / 16.0)).astype(
      np.uint8)


def encode_png_gray(image: np.ndarray) -> bytes:
  """Encodes a (H, W) or (H, W, 1) uint8 array as an 8-bit grayscale PNG.

  A dozen lines of stdlib instead of TFDS's default encoder, which would
  import TensorFlow (~7 s) just to write 1,797 tiny images; this keeps
  `download_and_prepare` well under a second and byte-for-byte reproducible.
  """
  image = np.asarray(image, np.uint8).reshape(image.shape[0], image.shape[1])
  h, w = image.shape

  def chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))

  # Filter byte 0 (None) before every row; 8-bit depth, colour type 0 (gray).
  raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))
  return (b"\x89PNG\r\n\x1a\n"
          + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
          + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def split_indices() -> dict[str, np.ndarray]:
  """Returns the sorted `load_digits` row indices of each split.

  The split is a seeded stratified 80/20 split (see module docstring). It is
  a pure function of the scikit-learn data and `SPLIT_SEED`.
  """
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  from sklearn import model_selection  # pylint: disable=g-import-not-at-top
  labels = datasets.load_digits().target
  train, test = model_selection.train_test_split(
      np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels,
      random_state=SPLIT_SEED, shuffle=True)
  return {"train": np.sort(train), "test": np.sort(test)}


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
  """The 1,797 scikit-learn 8x8 handwritten digits, prepared fully offline."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: stratified 80/20, seed 0."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=(
            "Optical recognition of handwritten digits (UCI optdigits test "
            "set) as shipped in scikit-learn; 8x8 grayscale, values scaled "
            "0..16 -> 0..255. Stratified 80/20 split with random_state=0."),
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(
                shape=(8, 8, 1), dtype=np.uint8, encoding_format="png"),
            "label": tfds.features.ClassLabel(
                names=[str(d) for d in range(10)]),
            "index": np.int32,
        }),
        supervised_keys=("image", "label"),
        homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html",
        citation=(
            "@misc{optdigits, author={Alpaydin, E. and Kaynak, C.}, "
            "title={Optical Recognition of Handwritten Digits}, year={1998}, "
            "publisher={UCI Machine Learning Repository}}"),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # The data ships inside scikit-learn: nothing to download.
    return {name: self._generate_examples(indices)
            for name, indices in split_indices().items()}

  def _generate_examples(self, indices: np.ndarray):
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    digits = datasets.load_digits()
    images = scale_to_uint8(digits.images)[..., None]  # (1797, 8, 8, 1)
    for i in indices:
      yield int(i), {"image": encode_png_gray(images[i]),
                     "label": int(digits.target[i]),
                     "index": int(i)}
