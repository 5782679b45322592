"""mnv2_jax.detection.coco_eval: COCO mAP through pycocotools."""

import math

import numpy as np
import pytest

from mnv2_jax.detection import coco_eval

GT = {  # image_id: (height, width, boxes (normalised corner), classes)
    1: (100, 200, np.array([[0.1, 0.1, 0.5, 0.4], [0.6, 0.5, 0.9, 0.9]]), np.array([0, 1])),
    2: (300, 300, np.array([[0.2, 0.2, 0.8, 0.8], [0, 0, 0, 0]]), np.array([2, -1])),
}


def _evaluate(make_dets, **kwargs):
  ev = coco_eval.CocoEvaluator(num_classes=3, **kwargs)
  for image_id, (h, w, boxes, classes) in GT.items():
    ev.add(image_id, h, w, boxes, classes, make_dets(boxes, classes))
  return ev.result()


def _perfect(boxes, classes):
  keep = classes >= 0
  return {"boxes": boxes[keep], "scores": np.full(keep.sum(), 0.9), "classes": classes[keep]}


def test_conversion():
  xywh = coco_eval.to_coco_xywh(np.array([[0.1, 0.2, 0.5, 0.6]]), height=100, width=200)
  np.testing.assert_allclose(xywh, [[40.0, 10.0, 80.0, 40.0]])


def test_perfect_detections(capsys):
  res = _evaluate(_perfect)
  assert set(res) >= {"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100"}
  for key in ("AP", "AP50", "AP75", "AR100"):
    assert res[key] == pytest.approx(1.0), key
  assert math.isnan(res["AP_small"])  # no small GT at all: pycocotools' -1 -> NaN
  assert capsys.readouterr().out == ""  # pycocotools' prints are captured


def test_shifted_boxes_score_lower():
  def shifted(boxes, classes):
    det = _perfect(boxes, classes)
    det["boxes"] = det["boxes"] + np.array([0.08, 0.08, 0.08, 0.08])
    return det
  res = _evaluate(shifted)
  assert 0.0 < res["AP"] < 0.9 and res["AP75"] < res["AP50"]


def test_wrong_class_and_no_detections_are_zero():
  def wrong(boxes, classes):
    det = _perfect(boxes, classes)
    det["classes"] = (det["classes"] + 1) % 3
    return det
  assert _evaluate(wrong)["AP"] == 0.0
  res = _evaluate(lambda b, c: None)
  assert res["AP"] == 0.0 and res["AR100"] == 0.0
  res = _evaluate(lambda b, c: {"boxes": np.zeros((0, 4)), "scores": np.zeros(0),
                                "classes": np.zeros(0, int)})
  assert res["AP"] == 0.0


def test_verbose_prints(capsys):
  _evaluate(_perfect, verbose=True)
  assert "Average Precision" in capsys.readouterr().out


def test_crowd_and_duplicate_id():
  ev = coco_eval.CocoEvaluator(num_classes=1)
  boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]])
  dets = {"boxes": boxes, "scores": np.array([0.9, 0.8]), "classes": np.array([0, 0])}
  # the second GT is a crowd region: the detection on it is neither TP nor FP -> AP stays 1.
  ev.add(1, 100, 100, boxes, np.array([0, 0]), dets, gt_is_crowd=np.array([False, True]))
  assert ev.result()["AP"] == pytest.approx(1.0)
  with pytest.raises(ValueError, match="already"):
    ev.add(1, 100, 100, boxes, np.array([0, 0]), dets)
