"""COCO box mAP through pycocotools (the reference implementation; AP is not re-implemented).

`CocoEvaluator` accumulates ground truth and detections per image in memory, then builds a
`pycocotools.coco.COCO` ground-truth object from a dataset dict, loads the detections with
`loadRes` and runs `COCOeval(gt, dt, "bbox")` evaluate / accumulate / summarize, the same path
as the TF Object Detection API's `coco_evaluation.CocoDetectionEvaluator` (coco_tools.py).

Conventions:
- boxes come in normalised corner form (ymin, xmin, ymax, xmax) and are converted to absolute
  COCO [x, y, width, height] with the image's height / width.
- object classes 0..K-1 become COCO category ids 1..K (ids are only labels here).
- a ground-truth annotation's "area" (which decides small / medium / large) is its box area in
  pixels unless `gt_areas` is given: real COCO uses the *segmentation* area, so pass the
  dataset's areas to reproduce official numbers exactly.
- `gt_is_crowd` boxes are crowd regions: detections matching them are neither TP nor FP.
- pycocotools' stdout chatter is captured; `verbose=True` prints it (incl. the summary table).
- result values are floats in [0, 1]; where pycocotools reports -1 (no ground truth in that
  area range / category at all) the value is NaN. No detections at all gives AP 0.0.
"""

from __future__ import annotations

import contextlib
import io
from typing import Mapping

import numpy as np

# COCOeval.stats indices of the reported metrics.
_STATS = {"AP": 0, "AP50": 1, "AP75": 2, "AP_small": 3, "AP_medium": 4, "AP_large": 5,
          "AR1": 6, "AR10": 7, "AR100": 8}


def to_coco_xywh(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
  """Normalised corner boxes [D, 4] (ymin, xmin, ymax, xmax) -> absolute [x, y, w, h] [D, 4]."""
  b = np.asarray(boxes, np.float64).reshape(-1, 4)
  return np.stack([b[:, 1] * width, b[:, 0] * height, (b[:, 3] - b[:, 1]) * width,
                   (b[:, 2] - b[:, 0]) * height], axis=-1)


class CocoEvaluator:
  """Accumulates images, then computes COCO box AP / AR with pycocotools."""

  def __init__(self, num_classes: int, *, verbose: bool = False):
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    self.num_classes = int(num_classes)
    self.verbose = verbose
    self._images: list[dict] = []
    self._gts: list[dict] = []
    self._dets: list[dict] = []
    self._ids: set[int] = set()

  def __len__(self) -> int:
    return len(self._images)

  def add(self, image_id: int, height: int, width: int, gt_boxes: np.ndarray,
          gt_classes: np.ndarray, detections: Mapping[str, np.ndarray] | None,
          gt_is_crowd: np.ndarray | None = None, gt_areas: np.ndarray | None = None) -> None:
    """One image: its GT (padding with class < 0 is skipped) and `postprocess.detect` output."""
    image_id = int(image_id)
    if image_id in self._ids:
      raise ValueError(f"image_id {image_id} was already added")
    gt_classes = np.asarray(gt_classes).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    if len(gt_boxes) != len(gt_classes):
      raise ValueError(f"{len(gt_boxes)} gt_boxes but {len(gt_classes)} gt_classes")
    crowd = (np.zeros(len(gt_classes), bool) if gt_is_crowd is None
             else np.asarray(gt_is_crowd, bool).reshape(-1))
    valid = gt_classes >= 0
    if np.any(gt_classes[valid] >= self.num_classes):
      raise ValueError(f"gt_classes must be < num_classes={self.num_classes}, "
                       f"got {gt_classes.max()}")
    self._ids.add(image_id)
    self._images.append({"id": image_id, "height": int(height), "width": int(width)})
    xywh = to_coco_xywh(gt_boxes, height, width)
    for i in np.flatnonzero(valid):
      area = float(gt_areas[i]) if gt_areas is not None else float(xywh[i, 2] * xywh[i, 3])
      self._gts.append({"id": len(self._gts) + 1, "image_id": image_id,
                        "category_id": int(gt_classes[i]) + 1, "bbox": xywh[i].tolist(),
                        "area": area, "iscrowd": int(crowd[i])})
    if detections is None:
      return
    det_xywh = to_coco_xywh(detections["boxes"], height, width)
    scores = np.asarray(detections["scores"]).reshape(-1)
    classes = np.asarray(detections["classes"]).reshape(-1)
    for box, score, cls in zip(det_xywh, scores, classes):
      self._dets.append({"image_id": image_id, "category_id": int(cls) + 1,
                         "bbox": box.tolist(), "score": float(score)})

  def _run(self) -> np.ndarray:
    from pycocotools.coco import COCO  # pylint: disable=g-import-not-at-top
    from pycocotools.cocoeval import COCOeval  # pylint: disable=g-import-not-at-top

    categories = [{"id": c + 1, "name": str(c)} for c in range(self.num_classes)]
    gt = COCO()
    gt.dataset = {"images": list(self._images), "annotations": list(self._gts),
                  "categories": categories}
    gt.createIndex()
    if self._dets:
      dt = gt.loadRes([dict(d) for d in self._dets])  # loadRes mutates its input
    else:
      # loadRes indexes anns[0]; an empty result set is an empty COCO object over the images.
      dt = COCO()
      dt.dataset = {"images": list(self._images), "annotations": [], "categories": categories}
      dt.createIndex()
    evaluator = COCOeval(gt, dt, "bbox")
    evaluator.params.imgIds = sorted(self._ids)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return np.asarray(evaluator.stats)

  def result(self) -> dict[str, float]:
    """"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100"."""
    if not self._images:
      raise ValueError("no images were added")
    if not self._gts:
      return {k: float("nan") for k in _STATS}
    buffer = io.StringIO()
    if self.verbose:
      stats = self._run()
    else:
      with contextlib.redirect_stdout(buffer):
        stats = self._run()
    return {k: (float(stats[i]) if stats[i] >= 0 else float("nan")) for k, i in _STATS.items()}
