"""A miniature COCO 2017 download, prepared by the REAL tfds `coco/2017` builder offline.

Why not `tfds.testing.mock_data`: in tfds 4.9.10 its random generator cannot produce
coco/2017 examples. It draws every sub-feature of the `objects` Sequence with its own random
length ("The length of all elements of one sequence should be the same. Got 43 != 28"), and
random bboxes break BBoxFeature's ymin <= ymax check. Instead, `prepare_mini_coco` writes the
official layout (`annotations/instances_{train,val}2017.json`, `image_info_test2017.json`,
`{train,val,test}2017/*.jpg`, tiny random JPEGs, the 80 real categories) and runs the real
builder on it with `download_and_extract` patched to return that directory. So the features,
label order, split metadata and ArrayRecord files are exactly what `tfds build` makes.
"""

from __future__ import annotations

import json
import os
import pathlib
from unittest import mock

import numpy as np
from tfds_fixtures import random_jpeg

CROWD_CATEGORY = 90  # "toothbrush" (label 79): used only by crowd annotations here.
SPLITS = {"train": ("train2017", 6), "validation": ("val2017", 5), "test": ("test2017", 2)}


def _annotations(rng, image_id, height, width, count, next_id):
  from mnv2_jax.data import coco_detection  # pylint: disable=g-import-not-at-top
  anns = []
  for k in range(count):
    w, h = int(rng.integers(4, width // 2 + 4)), int(rng.integers(4, height // 2 + 4))
    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    crowd = k == 1  # The second annotation of an image is a crowd region.
    cat = CROWD_CATEGORY if crowd else int(rng.choice(coco_detection.COCO_CATEGORY_IDS[:79]))
    anns.append({"id": next_id + k, "image_id": image_id, "category_id": cat,
                 "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(crowd),
                 "segmentation": []})
  return anns


def write_mini_coco(root: pathlib.Path, seed: int = 0) -> dict:
  """Writes the miniature download under `root`.

  Returns:
    {split: {image_id: {"height", "width", "boxes" [n, 4] normalized yxyx, "labels" [n],
    "is_crowd" [n]}}}, annotations in id order (the order tfds stores them in).
  """
  from mnv2_jax.data import coco_detection  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  categories = [{"id": i, "name": n, "supercategory": "x"} for i, n in zip(
      coco_detection.COCO_CATEGORY_IDS, coco_detection.COCO_LABEL_NAMES)]
  (root / "annotations").mkdir(parents=True)
  expected, next_ann = {}, 1
  for split, (folder, count) in SPLITS.items():
    (root / folder).mkdir()
    images, anns, expected[split] = [], [], {}
    ids = rng.choice(np.arange(1, 1000), count, replace=False)
    for j, image_id in enumerate(int(i) for i in ids):
      height, width = (int(v) for v in rng.integers(24, 72, 2))
      name = f"{image_id:012d}.jpg"
      (root / folder / name).write_bytes(random_jpeg(rng, height, width, grayscale=j == 0))
      images.append({"id": image_id, "file_name": name, "height": height, "width": width})
      # Image 0 has no objects; image 1 has 7 (more than the tests' max_boxes).
      n = 0 if split == "test" or j == 0 else 7 if j == 1 else int(rng.integers(1, 5))
      mine = _annotations(rng, image_id, height, width, n, next_ann)
      next_ann += n
      anns += mine
      scale = np.array([height, width, height, width], np.float64)
      expected[split][image_id] = {
          "height": height, "width": width,
          "boxes": np.array([[a["bbox"][1], a["bbox"][0], a["bbox"][1] + a["bbox"][3],
                              a["bbox"][0] + a["bbox"][2]] for a in mine],
                            np.float64).reshape(-1, 4) / scale,
          "labels": np.array([coco_detection.COCO_CATEGORY_IDS.index(a["category_id"])
                              for a in mine], np.int64),
          "is_crowd": np.array([bool(a["iscrowd"]) for a in mine], bool)}
    info = {"images": images, "categories": categories}
    if split == "test":
      (root / "annotations" / "image_info_test2017.json").write_text(json.dumps(info))
    else:
      info["annotations"] = anns
      (root / "annotations" / f"instances_{folder}.json").write_text(json.dumps(info))
  return expected


def prepare_mini_coco(root: pathlib.Path) -> tuple[str, dict]:
  """(data_dir, expected): the real coco/2017 builder prepared (ArrayRecord) offline."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  download = root / "download"
  expected = write_mini_coco(download)

  def download_and_extract(self, url_or_urls):
    del self
    return {key: os.fspath(download) for key in url_or_urls}

  data_dir = os.fspath(root / "tfds")
  with mock.patch.object(tfds.download.DownloadManager, "download_and_extract",
                         download_and_extract):
    tfds.builder("coco/2017", data_dir=data_dir,
                 file_format="array_record").download_and_prepare()
  return data_dir, expected
