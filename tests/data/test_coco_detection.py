"""coco_detection: the tfds coco/2017 reader, on the real builder prepared from a mini download.

See coco_fixtures.py for why this is not `tfds.testing.mock_data`. Nothing is downloaded.
"""

from __future__ import annotations

import os

from coco_fixtures import prepare_mini_coco
import numpy as np
import pytest
import tensorflow_datasets as tfds

from mnv2_jax.data import coco_detection as cd
from mnv2_jax.data import det_preprocessing as dp

AUG = dp.DetAugment(resolution=32, max_boxes=5)
CROWD_LABEL = cd.COCO_CATEGORY_IDS.index(90)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
  return prepare_mini_coco(tmp_path_factory.mktemp("mini_coco"))


def _eval(data_dir, **kwargs):
  kwargs.setdefault("augment", AUG)
  return list(cd.make_eval_dataset("coco/2017", data_dir=data_dir, split="validation",
                                   **kwargs).as_numpy_iterator())


def _train(data_dir, steps=3, **kwargs):
  kwargs.setdefault("augment", AUG)
  ds = cd.make_train_dataset("coco/2017", data_dir=data_dir, split="train",
                             global_batch_size=4, **kwargs)
  return list(ds.take(steps).as_numpy_iterator())


def test_label_constants_and_category_ids(coco):
  assert len(set(cd.COCO_LABEL_NAMES)) == 80 and len(set(cd.COCO_CATEGORY_IDS)) == 80
  assert min(cd.COCO_CATEGORY_IDS) == 1 and max(cd.COCO_CATEGORY_IDS) == 90
  np.testing.assert_array_equal(cd.category_ids(np.array([[0, 11, 79, -1]])),
                                [[1, 13, 90, -1]])
  builder = cd.get_builder("coco/2017", coco[0])
  assert tuple(builder.info.features["objects"]["label"].names) == cd.COCO_LABEL_NAMES
  assert cd.num_classes(builder) == 80


def test_not_prepared_and_wrong_format_errors_say_how(tmp_path):
  empty = os.fspath(tmp_path / "empty")
  with pytest.raises(cd.DatasetNotPreparedError,
                     match=r"tfds build coco/2017 --data_dir=.*array_record.*25 GB"):
    cd.make_train_dataset("coco/2017", data_dir=empty, global_batch_size=2, seed=0)
  assert not os.path.exists(empty) or not any(p for p in os.scandir(empty))
  tfds.builder("sklearn_digits", data_dir=os.fspath(tmp_path / "tfr"),
               file_format="tfrecord").download_and_prepare()
  with pytest.raises(cd.DatasetNotPreparedError, match="stored as 'tfrecord'.*convert_format"):
    cd.get_builder("sklearn_digits", os.fspath(tmp_path / "tfr"))


def test_eval_batches_match_the_annotations(coco):
  data_dir, expected = coco
  batches = _eval(data_dir, global_batch_size=2)
  assert [int(b["mask"].sum()) for b in batches] == [2, 2, 1]
  shapes = {k: (v.shape, v.dtype) for k, v in batches[0].items()}
  assert shapes == {
      "image": ((2, 32, 32, 3), np.uint8), "boxes": ((2, 5, 4), np.float32),
      "classes": ((2, 5), np.int32), "is_crowd": ((2, 5), bool), "height": ((2,), np.int32),
      "width": ((2,), np.int32), "image_id": ((2,), np.int32), "mask": ((2,), bool)}
  seen = []
  for b in batches:
    for i in np.nonzero(b["mask"])[0]:
      image_id = int(b["image_id"][i])
      want = expected["validation"][image_id]
      seen.append(image_id)
      assert (b["height"][i], b["width"][i]) == (want["height"], want["width"])
      n = min(len(want["labels"]), AUG.max_boxes)  # 7 objects on one image: first 5 kept.
      np.testing.assert_allclose(b["boxes"][i, :n], want["boxes"][:n], atol=1e-6)
      np.testing.assert_array_equal(b["classes"][i, :n], want["labels"][:n])
      np.testing.assert_array_equal(b["is_crowd"][i, :n], want["is_crowd"][:n])
      assert np.all(b["classes"][i, n:] == -1) and not b["is_crowd"][i, n:].any()
  assert sorted(seen) == sorted(expected["validation"])
  pad = batches[-1]
  assert pad["image_id"][1] == -1 and pad["height"][1] == 0 and not pad["image"][1].any()
  assert np.all(pad["classes"][1] == -1)
  assert any(want["is_crowd"].any() for want in expected["validation"].values())


def test_eval_shards_cover_the_split_once_with_equal_batch_counts(coco):
  data_dir, expected = coco
  shards = [_eval(data_dir, global_batch_size=4, process_index=p, process_count=2)
            for p in range(2)]
  assert [len(s) for s in shards] == [2, 2]  # Shards of 3 and 2, batches of 2.
  ids = [int(i) for s in shards for b in s for i in b["image_id"][b["mask"]]]
  assert sorted(ids) == sorted(expected["validation"])
  assert _eval(data_dir, global_batch_size=2)[0]["image"].tobytes() == (
      _eval(data_dir, global_batch_size=2)[0]["image"].tobytes())


def test_train_batches_format_and_crowd_is_dropped(coco):
  batches = _train(coco[0], steps=6, seed=0)
  for b in batches:
    assert {k: (v.shape, v.dtype) for k, v in b.items()} == {
        "image": ((4, 32, 32, 3), np.uint8), "boxes": ((4, 5, 4), np.float32),
        "classes": ((4, 5), np.int32)}
    valid = b["classes"] >= 0
    assert np.all(valid[:, :-1] | ~valid[:, 1:])  # Padding only after the real boxes.
    assert np.all(b["boxes"][~valid] == 0)
    boxes = b["boxes"][valid]
    assert np.all((boxes >= 0) & (boxes <= 1))
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
    assert np.all(b["classes"][valid] < 80) and CROWD_LABEL not in b["classes"]
  assert sum(int((b["classes"] >= 0).sum()) for b in batches) > 0


def test_train_is_deterministic_resumable_and_seeded(coco):
  data_dir = coco[0]
  first = _train(data_dir, steps=3, seed=5)
  again = _train(data_dir, steps=3, seed=5, cache=True, num_parallel_calls=1)
  resumed = _train(data_dir, steps=1, seed=5, start_step=2)
  other = _train(data_dir, steps=3, seed=6)
  for a, b in zip(first, again):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  for key in first[2]:
    np.testing.assert_array_equal(first[2][key], resumed[0][key])
  assert any(a["image"].tobytes() != b["image"].tobytes() for a, b in zip(first, other))
  with pytest.raises(ValueError, match="DetAugment.max_boxes"):
    _train(data_dir, seed=0, augment=dp.DetAugment(max_boxes=0))
  with pytest.raises(ValueError, match="multiple of process_count"):
    _train(data_dir, seed=0, process_count=3)
