"""`voc2012_segmentation` (mnv2_jax/data/voc_segmentation.py) on miniature official archives.

The fake VOCtrainval tar and SBD benchmark.tgz have the real directory layout and member kinds
(ImageSets lists, JPEGImages with extra detection-only images, palette-PNG SegmentationClass
written with VOC's colour map, SegmentationObject, SBD cls/*.mat via scipy.io.savemat, img/),
with members in an order that exercises the streaming reader (SBD lists after the class files,
a class file before its image and an image before its class file). The real builder prepares
them as ArrayRecord; labels must come back exactly (including 255), the split sizes and the
train_aug rule must hold, and missing or malformed inputs must be named.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from voc_fixtures import (SBD, SBD_TRAIN, SBD_VAL, TRAINAUG_FROM_SBD, TRAINAUG_FROM_VOC, VOC_TRAIN,
                          VOC_VAL, make_archives, palette_png, sbd_mat)

from mnv2_jax.data import voc_segmentation as voc



@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """Both configs prepared as ArrayRecord from the same miniature archives."""
  root = tmp_path_factory.mktemp("voc_seg")
  expected = make_archives(root / "manual")
  config = tfds.download.DownloadConfig(manual_dir=os.fspath(root / "manual"))
  builders = {}
  for name in ("official", "trainaug"):
    builder = tfds.builder(f"voc2012_segmentation/{name}", data_dir=os.fspath(root / "tfds"),
                           file_format="array_record")
    builder.download_and_prepare(download_config=config)
    builders[name] = builder
  return builders, expected


def _read(builder, split) -> dict[str, dict]:
  source = builder.as_data_source(split=split, decoders={"image": tfds.decode.SkipDecoding()})
  rows = source.__getitems__(list(range(len(source))))
  return {r["image/filename"].decode().removesuffix(".jpg"): r for r in rows}


def test_official_splits_and_exact_labels(built):
  builders, expected = built
  builder = builders["official"]
  assert builder.name == "voc2012_segmentation"
  assert str(builder.info.file_format.value) == "array_record"
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
      "train": len(VOC_TRAIN), "validation": len(VOC_VAL)}
  for split, ids in (("train", VOC_TRAIN), ("validation", VOC_VAL)):
    rows = _read(builder, split)
    assert sorted(rows) == sorted(ids)
    for i, row in rows.items():
      assert row["image"] == expected["jpeg"][i]  # The original JPEG bytes, unchanged.
      assert row["segmentation"].shape == expected["voc"][i].shape + (1,)
      np.testing.assert_array_equal(row["segmentation"][..., 0], expected["voc"][i])
  assert 255 in rows[VOC_VAL[0]]["segmentation"]


def test_trainaug_rule(built):
  builders, expected = built
  builder = builders["trainaug"]
  assert builder.info.splits["train"].num_examples == 7
  rows = _read(builder, "train")
  assert sorted(rows) == sorted(TRAINAUG_FROM_VOC + TRAINAUG_FROM_SBD)
  from_voc, from_sbd = voc.trainaug_ids(VOC_TRAIN, VOC_VAL, SBD_TRAIN + SBD_VAL)
  assert (from_voc, from_sbd) == (sorted(TRAINAUG_FROM_VOC), sorted(TRAINAUG_FROM_SBD))
  assert not set(rows) & set(VOC_VAL)  # 2007_000033 is in SBD train but VOC val: left out.
  for i in TRAINAUG_FROM_VOC:  # Including 2008_000001, which SBD labels too.
    np.testing.assert_array_equal(rows[i]["segmentation"][..., 0], expected["voc"][i])
  for i in TRAINAUG_FROM_SBD:
    np.testing.assert_array_equal(rows[i]["segmentation"][..., 0], expected["sbd"][i])
    assert 255 not in rows[i]["segmentation"]
  for i, row in rows.items():  # VOC's JPEG where it has one, else SBD's img/.
    assert row["image"] == expected["jpeg"][i], i
  val = _read(builder, "validation")
  assert sorted(val) == sorted(VOC_VAL)
  for i in VOC_VAL:
    np.testing.assert_array_equal(val[i]["segmentation"][..., 0], expected["voc"][i])


def test_decoded_image_matches_the_jpeg(built):
  builders, expected = built
  row = builders["official"].as_data_source(split="train")[0]
  from PIL import Image  # pylint: disable=g-import-not-at-top
  name = row["image/filename"].decode().removesuffix(".jpg")
  with Image.open(io.BytesIO(expected["jpeg"][name])) as image:
    np.testing.assert_array_equal(row["image"], np.asarray(image.convert("RGB")))


@pytest.mark.parametrize("config, present, missing", [
    ("official", ["unrelated.txt"], voc.VOC_TAR),
    ("trainaug", [voc.VOC_TAR], voc.SBD_TGZ),
])
def test_missing_archive_names_file_and_manual_dir(tmp_path, config, present, missing):
  manual = tmp_path / "manual"
  manual.mkdir()
  for name in present:
    (manual / name).write_bytes(b"x")
  assert voc.missing_files(os.fspath(manual), config) == [missing]
  builder = tfds.builder(f"voc2012_segmentation/{config}", data_dir=os.fspath(tmp_path / "d"),
                         file_format="array_record")
  with pytest.raises(voc.ArchiveError) as e:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual)))
  for text in (missing, os.fspath(manual), "host.robots.ox.ac.uk"):
    assert text in str(e.value)
  assert not builder.is_prepared()


def test_rgb_labels_and_bad_values_are_refused():
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rgb = io.BytesIO()
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(rgb, format="PNG")
  with pytest.raises(voc.ArchiveError, match="x.png: PNG mode 'RGB'"):
    voc.decode_class_png(rgb.getvalue(), "x.png")
  label = np.zeros((4, 4), np.uint8)
  label[1, 1] = 42
  with pytest.raises(voc.ArchiveError, match=r"y.png: label values \[42\]"):
    voc.decode_class_png(palette_png(label), "y.png")
  with pytest.raises(voc.ArchiveError, match=r"z.mat: label values \[42\]"):
    voc.read_sbd_mat(sbd_mat(label), "z.mat")
  with pytest.raises(voc.ArchiveError, match="GTcls.Segmentation"):
    voc.read_sbd_mat(b"MATLAB garbage", "w.mat")


def test_pipeline_path_record_source_parse_decode_eval(built):
  """The repo's read path: ArrayRecord raw bytes by index -> TFDS parse in TF -> decode ->
  eval padding; the labels arrive exact (255 included) with padding marked 255."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mnv2_jax.data import datasets  # pylint: disable=g-import-not-at-top
  from mnv2_jax.data import seg_preprocessing as sp  # pylint: disable=g-import-not-at-top
  builders, expected = built
  builder = builders["trainaug"]
  records = datasets.RecordSource(builder, "train").read(range(7))
  features = builder.info.features
  aug = sp.SegAugment(crop_size=(48, 48))
  seen = set()
  for record in records:
    example = features.deserialize_example(
        tf.constant(record), decoders={"image": tfds.decode.SkipDecoding(),
                                       "segmentation": tfds.decode.SkipDecoding()})
    name = example["image/filename"].numpy().decode().removesuffix(".jpg")
    truth = expected["voc"].get(name) if name in VOC_TRAIN else expected["sbd"][name]
    image, label = sp.decode(example["image"], example["segmentation"])
    image, label = sp.preprocess_for_eval(image, label, aug)
    h, w = truth.shape
    np.testing.assert_array_equal(label.numpy()[:h, :w], truth)
    assert (label.numpy()[h:] == 255).all() and (label.numpy()[:, w:] == 255).all()
    seen.add(name)
  assert seen == set(TRAINAUG_FROM_VOC + TRAINAUG_FROM_SBD)
