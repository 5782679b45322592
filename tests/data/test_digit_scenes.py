"""digit_scenes: the scene rule, split hygiene, byte-determinism, and the shared coco reader."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mnv2_jax.data import coco_detection as cd
from mnv2_jax.data import det_preprocessing as dp
from mnv2_jax.data import digit_scenes as dsc
from mnv2_jax.data import digits


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory) -> str:
  data_dir = os.fspath(tmp_path_factory.mktemp("digit_scenes"))
  dsc.prepare(data_dir)
  return data_dir


def _check_tight(seg: np.ndarray, boxes: np.ndarray, labels: np.ndarray, side: int):
  """Each box is the exact bounding box of its class's mask pixels inside it."""
  covered = np.zeros(seg.shape, bool)
  for box, label in zip(boxes, labels):
    y0, x0, y1, x1 = np.round(np.asarray(box) * side).astype(int)
    ys, xs = np.nonzero(seg[y0:y1, x0:x1] == label + 1)
    assert (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1) == (0, 0, y1 - y0, x1 - x0)
    covered[y0:y1, x0:x1] = True
  assert not np.any(seg[~covered]), "mask pixels outside every box"
  for box, label in zip(boxes, labels):  # Inside a box: only its own label or background.
    y0, x0, y1, x1 = np.round(np.asarray(box) * side).astype(int)
    assert set(np.unique(seg[y0:y1, x0:x1])) <= {0, label + 1}


def test_scene_rule_boxes_masks_and_sources():
  pools = digits.split_indices()
  for split in ("train", "test"):
    for _, scene in dsc.scenes(split, 40):
      assert scene["image"].shape == (64, 64, 3) and scene["image"].dtype == np.uint8
      assert 1 <= len(scene["labels"]) <= 3
      _check_tight(scene["segmentation"][..., 0], scene["boxes"], scene["labels"], 64)
      assert set(scene["digit_index"]) <= set(pools[split])
      sides = scene["boxes"][:, 2:] - scene["boxes"][:, :2]
      assert np.all(sides * 64 <= dsc.DIGIT_SIZE[1]) and np.all(sides > 0)
  first = next(dsc.scenes("train", 1))[1]
  again = next(dsc.scenes("train", 1))[1]
  assert all(np.array_equal(first[k], again[k]) for k in first)


def test_prepared_splits_are_disjoint_and_match_the_generator(scenes_dir):
  builder = tfds.builder("digit_scenes", data_dir=scenes_dir)
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == dsc.NUM_SCENES
  used, ids = {}, {}
  for split in dsc.NUM_SCENES:
    source = builder.as_data_source(split=split, decoders={
        "image": tfds.decode.SkipDecoding(), "segmentation": tfds.decode.SkipDecoding()})
    rows = source.__getitems__(range(len(source)))
    used[split] = {int(i) for ex in rows for i in ex["objects"]["digit_index"]}
    ids[split] = sorted(int(ex["image/id"]) for ex in rows)
  assert not used["train"] & used["test"]
  assert ids["train"] == list(range(1, 2001)) and ids["test"] == list(range(1_000_001, 1_000_301))
  source = builder.as_data_source(split="test")
  by_id = {int(source[i]["image/id"]): source[i] for i in range(25)}
  for i, scene in dsc.scenes("test", 300):
    if dsc.ID_OFFSET["test"] + i in by_id:
      ex = by_id.pop(dsc.ID_OFFSET["test"] + i)
      np.testing.assert_array_equal(ex["image"], scene["image"])  # PNG is lossless.
      np.testing.assert_array_equal(ex["segmentation"], scene["segmentation"])
      np.testing.assert_allclose(ex["objects"]["bbox"], scene["boxes"], atol=1e-6)
      np.testing.assert_array_equal(ex["objects"]["label"], scene["labels"])
      _check_tight(ex["segmentation"][..., 0], ex["objects"]["bbox"], ex["objects"]["label"], 64)
  assert not by_id


def test_preparation_is_byte_deterministic(scenes_dir, tmp_path):
  other = os.fspath(tmp_path)
  dsc.prepare(other)
  version = pathlib.Path("digit_scenes") / str(dsc.DigitScenes.VERSION)
  files = sorted(p.name for p in (pathlib.Path(scenes_dir) / version).iterdir()
                 if "array_record" in p.name)
  assert len(files) == 2
  for name in files + ["features.json"]:
    a = (pathlib.Path(scenes_dir) / version / name).read_bytes()
    assert a == (pathlib.Path(other) / version / name).read_bytes(), name


def test_coco_reader_serves_digit_scenes(scenes_dir):
  aug = dp.DetAugment(resolution=64, max_boxes=4)
  batches = list(cd.make_eval_dataset("digit_scenes", data_dir=scenes_dir, split="test",
                                      global_batch_size=128, augment=aug).as_numpy_iterator())
  assert [int(b["mask"].sum()) for b in batches] == [128, 128, 44]
  b = batches[0]
  assert b["segmentation"].shape == (128, 64, 64) and b["segmentation"].dtype == np.uint8
  assert np.all(batches[-1]["segmentation"][~batches[-1]["mask"]] == 255)
  assert not b["is_crowd"].any() and np.all(b["height"] == 64)
  for i in range(20):
    valid = b["classes"][i] >= 0
    _check_tight(b["segmentation"][i], b["boxes"][i][valid], b["classes"][i][valid], 64)
  for crop in (False, True):
    train = cd.make_train_dataset(
        "digit_scenes", data_dir=scenes_dir, split="test", global_batch_size=16, seed=0,
        augment=dp.DetAugment(resolution=48, max_boxes=4, ssd_random_crop=crop))
    batch = next(train.as_numpy_iterator())
    assert batch["segmentation"].shape == (16, 48, 48)
    assert batch["image"].shape == (16, 48, 48, 3)
    for seg, boxes, classes in zip(batch["segmentation"], batch["boxes"], batch["classes"]):
      for box, c in zip(boxes[classes >= 0], classes[classes >= 0]):
        y0, x0, y1, x1 = np.round(box * 48).astype(int)
        ys, xs = np.nonzero(seg[y0:y1, x0:x1] == c + 1)  # Same flip/crop on mask and box.
        # A crop can leave a sliver (IoA threshold 0) that the nearest resize may drop.
        assert ys.size or min(y1 - y0, x1 - x0) < 3, (box, c)
        if not crop:  # Uncropped boxes stay tight (up to the nearest-neighbour 64 -> 48 px).
          assert ys.min() <= 1 and xs.min() <= 1
          assert ys.max() + 1 >= y1 - y0 - 1 and xs.max() + 1 >= x1 - x0 - 1
