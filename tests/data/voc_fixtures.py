"""Miniature official VOC 2012 + SBD archives (real layouts, tiny random images) for tests.

Used by tests/data/test_voc_segmentation.py (the builder) and tests/test_train_dense.py
(`configs/deeplabv3_voc.py` end to end). Nothing is downloaded.
"""

from __future__ import annotations

import io
import os
import tarfile

import numpy as np
from tfds_fixtures import random_jpeg

from mnv2_jax.data import voc_segmentation as voc

VOC_TRAIN = ["2007_000032", "2007_000039", "2008_000001"]
VOC_VAL = ["2007_000033", "2008_000002"]
DETECTION_ONLY = ["2008_000100", "2008_000101", "2009_000001"]  # In JPEGImages, no seg label.
SBD_TRAIN = ["2008_000001", "2008_000100", "2007_000033"]  # ∩ VOC train, new, ∩ VOC val.
SBD_VAL = ["2008_000101", "2010_000500", "2010_000501"]  # 2010_*: not in the VOC tar.
# The rule: (SBD train ∪ SBD val ∪ VOC train) - VOC val, VOC's label where it has one.
TRAINAUG_FROM_VOC = VOC_TRAIN
TRAINAUG_FROM_SBD = ["2008_000100", "2008_000101", "2010_000500", "2010_000501"]
ROOT = "VOCdevkit/VOC2012/"
SBD = "benchmark_RELEASE/dataset/"


def voc_palette() -> list[int]:
  """VOC's colour map (devkit's labelcolormap: bit-interleaved RGB), 256 entries."""
  palette = []
  for i in range(256):
    r = g = b = 0
    c = i
    for j in range(8):
      r |= ((c >> 0) & 1) << (7 - j)
      g |= ((c >> 1) & 1) << (7 - j)
      b |= ((c >> 2) & 1) << (7 - j)
      c >>= 3
    palette += [r, g, b]
  return palette


def palette_png(label: np.ndarray) -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = Image.fromarray(label.astype(np.uint8))
  image.putpalette(voc_palette())  # Mode becomes "P": pixel values stay the class indices.
  assert image.mode == "P"
  buf = io.BytesIO()
  image.save(buf, format="PNG")
  return buf.getvalue()


def sbd_mat(label: np.ndarray) -> bytes:
  from scipy import io as sio  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  sio.savemat(buf, {"GTcls": {"Segmentation": label.astype(np.uint8),
                              "Boundaries": np.zeros((20, 1), object),
                              "CategoriesPresent": np.unique(label[label > 0]).astype(float)}},
              do_compression=True)
  return buf.getvalue()


def _label(rng, shape, void: bool) -> np.ndarray:
  label = rng.integers(0, voc.NUM_CLASSES, shape).astype(np.uint8)
  label[0, :3] = [0, 20, 15]  # Always the extremes and a colour whose RGB is not its index.
  if void:
    label[shape[0] // 2, :] = 255  # A boundary band, as in VOC.
  return label


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(payload)
  tar.addfile(info, io.BytesIO(payload))


def make_archives(manual: os.PathLike, seed: int = 0) -> dict:
  """Writes the two archives into `manual`; returns what a correct build must contain."""
  rng = np.random.default_rng(seed)
  os.makedirs(manual, exist_ok=True)
  ids = VOC_TRAIN + VOC_VAL + DETECTION_ONLY
  shapes = {i: tuple(int(v) for v in rng.integers(16, 40, 2)) for i in ids + SBD_VAL[1:]}
  jpegs = {i: random_jpeg(rng, *shapes[i]) for i in shapes}
  voc_labels = {i: _label(rng, shapes[i], True) for i in VOC_TRAIN + VOC_VAL}
  sbd_labels = {i: _label(rng, shapes[i], False) for i in SBD_TRAIN + SBD_VAL}
  with tarfile.open(os.path.join(manual, voc.VOC_TAR), "w") as tar:
    for split, split_ids in (("train", VOC_TRAIN), ("val", VOC_VAL),
                             ("trainval", VOC_TRAIN + VOC_VAL)):
      _add(tar, f"{ROOT}ImageSets/Segmentation/{split}.txt", "\n".join(split_ids).encode() + b"\n")
    _add(tar, f"{ROOT}ImageSets/Main/train.txt", "\n".join(ids).encode())
    for i in ids:
      _add(tar, f"{ROOT}Annotations/{i}.xml", b"<annotation/>")
      _add(tar, f"{ROOT}JPEGImages/{i}.jpg", jpegs[i])
    for i in VOC_TRAIN + VOC_VAL:
      _add(tar, f"{ROOT}SegmentationClass/{i}.png", palette_png(voc_labels[i]))
      _add(tar, f"{ROOT}SegmentationObject/{i}.png", palette_png(voc_labels[i] // 2))
  sbd_jpegs = {i: random_jpeg(rng, *shapes[i]) for i in SBD_TRAIN + SBD_VAL}  # Other pixels.
  with tarfile.open(os.path.join(manual, voc.SBD_TGZ), "w:gz") as tgz:
    _add(tgz, f"{SBD}cls/2010_000500.mat", sbd_mat(sbd_labels["2010_000500"]))  # Before image.
    for i in SBD_TRAIN + SBD_VAL:
      _add(tgz, f"{SBD}img/{i}.jpg", sbd_jpegs[i])
      _add(tgz, f"{SBD}inst/{i}.mat", b"not read")
    for i in SBD_TRAIN + SBD_VAL[:-1]:
      if i != "2010_000500":
        _add(tgz, f"{SBD}cls/{i}.mat", sbd_mat(sbd_labels[i]))
    _add(tgz, f"{SBD}cls/2010_000501.mat", sbd_mat(sbd_labels["2010_000501"]))  # After image.
    _add(tgz, f"{SBD}train.txt", "\n".join(SBD_TRAIN).encode())
    _add(tgz, f"{SBD}val.txt", "\n".join(SBD_VAL).encode())
  image_of = dict(jpegs)
  image_of.update({i: sbd_jpegs[i] for i in SBD_VAL[1:]})  # Not in VOC: SBD's own image.
  return {"jpeg": image_of, "voc": voc_labels, "sbd": sbd_labels}
