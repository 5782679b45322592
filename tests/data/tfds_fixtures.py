"""Test helpers for the input side: configs and a miniature ImageNet download.

A plain module (not conftest.py) so test files can import it by a unique name;
`conftest.py` builds the session fixtures from it.
"""

import io
import os
import pathlib
import tarfile

import ml_collections
import numpy as np

METADATA_DIR = os.fspath(pathlib.Path(__file__).parent / "metadata")

# Two real ImageNet synsets (label ids 0 and 1 of the 1000-class label list).
SYNSETS = ("n01440764", "n01443537")
TRAIN_PER_SYNSET = 5
NUM_VAL = 7


def input_config(**overrides) -> ml_collections.ConfigDict:
  """A complete `config.input` section with test-friendly defaults."""
  cfg = ml_collections.ConfigDict({
      "dataset": "sklearn_digits",
      "data_dir": None,
      "manual_dir": None,
      "train_split": "train",
      "eval_split": "test",
      "resolution": 16,
      "augment": "pad_crop",
      "crop_area_min": 0.05,
      "eval_crop": 1.0,
      "cache": False,
      "num_parallel_calls": 2,
      "prefetch": 1,
      "synthetic_num_classes": 10,
      "synthetic_num_examples": 50,
  })
  cfg.update(overrides)
  return cfg


def random_jpeg(rng: np.random.Generator, height: int, width: int,
                grayscale: bool = False) -> bytes:
  """A small random JPEG (smooth noise so it compresses like a photo)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  coarse = rng.integers(0, 256, (max(2, height // 4), max(2, width // 4), 3),
                        dtype=np.uint8)
  image = Image.fromarray(coarse).resize((width, height), Image.BILINEAR)
  if grayscale:
    image = image.convert("L")
  buf = io.BytesIO()
  image.save(buf, format="JPEG", quality=90)
  return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(payload)
  tar.addfile(info, io.BytesIO(payload))


def make_imagenet_manual_dir(root: pathlib.Path, seed: int = 0) -> dict:
  """Writes ILSVRC2012_img_{train,val}.tar in the official layout.

  Train: an outer tar of per-synset tars `<wnid>.tar`, each holding
  `<wnid>_<i>.JPEG`. Val: flat `ILSVRC2012_val_<8 digits>.JPEG`, labelled by
  TFDS from its shipped validation_labels.txt (line i = image i).

  Returns:
    {"train": {file_name: wnid}, "validation": [file names]}.
  """
  rng = np.random.default_rng(seed)
  root.mkdir(parents=True, exist_ok=True)
  expected = {"train": {}, "validation": []}
  with tarfile.open(root / "ILSVRC2012_img_train.tar", "w") as outer:
    for wnid in SYNSETS:
      inner_buf = io.BytesIO()
      with tarfile.open(fileobj=inner_buf, mode="w") as inner:
        for i in range(TRAIN_PER_SYNSET):
          name = f"{wnid}_{i}.JPEG"
          height, width = (int(v) for v in rng.integers(24, 64, 2))
          _add(inner, name, random_jpeg(rng, height, width,
                                        grayscale=(i == 0)))
          expected["train"][name] = wnid
      _add(outer, f"{wnid}.tar", inner_buf.getvalue())
  with tarfile.open(root / "ILSVRC2012_img_val.tar", "w") as val:
    for i in range(1, NUM_VAL + 1):
      name = f"ILSVRC2012_val_{i:08d}.JPEG"
      height, width = (int(v) for v in rng.integers(24, 64, 2))
      _add(val, name, random_jpeg(rng, height, width))
      expected["validation"].append(name)
  return expected
