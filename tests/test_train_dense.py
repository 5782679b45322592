"""`mnv2-train` with a `head` section (mnv2_jax/train_dense.py): the COCO and VOC configs end
to end on miniature real-builder datasets, exact resume, and bad settings rejected early.

Data: `coco/2017` is the REAL tfds builder run on a miniature official download
(tests/data/coco_fixtures.py); `voc2012_segmentation` the project's builder on miniature
official archives (tests/data/voc_fixtures.py). Nothing downloads.
"""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
import coco_fixtures  # noqa: E402  pylint: disable=wrong-import-position
import voc_fixtures  # noqa: E402  pylint: disable=wrong-import-position

from configs import deeplabv3_voc  # noqa: E402
from configs import ssdlite_coco  # noqa: E402
from mnv2_jax import heads_complexity  # noqa: E402
from mnv2_jax import train  # noqa: E402
from mnv2_jax import validate  # noqa: E402


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f if line.strip()]


def _short(config, steps):
  config.train.update(num_steps=steps, log_every_steps=1, eval_every_steps=steps,
                      checkpoint_every_steps=3)
  config.wandb.mode = "disabled"
  return config


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory):
  """A data_dir where digit_scenes gets prepared (offline) once for this module."""
  return str(tmp_path_factory.mktemp("scenes"))


@pytest.fixture(scope="module")
def mini_coco(tmp_path_factory):
  return coco_fixtures.prepare_mini_coco(tmp_path_factory.mktemp("coco"))[0]


def _coco_config(data_dir, steps):
  config = ssdlite_coco.get_config("width=0.35,res=64,batch=2")
  config.input.data_dir = data_dir
  config.input.eval_batch_size = 2
  return _short(config, steps)


@pytest.mark.slow(seconds=60)
def test_ssdlite_coco_config_trains_evaluates_and_resumes_exactly(mini_coco, tmp_path):
  straight = str(tmp_path / "straight")
  summary = train.train_and_evaluate(_coco_config(mini_coco, 5), straight)
  assert summary["status"] == "finished" and summary["task"] == "detection"
  assert summary["metric"] == "mAP" and 0.0 <= summary["final_metric"] <= 1.0
  model = validate.check_model(_coco_config(mini_coco, 5), 80)
  figures = heads_complexity.analyze(model.task(64))
  assert (summary["madds"], summary["params"]) == (figures.madds, figures.params)
  evals = [m for m in _metrics(straight) if "eval/mAP" in m]
  assert evals and "eval/AP50" in evals[-1]

  resumed = str(tmp_path / "resumed")
  train.train_and_evaluate(_coco_config(mini_coco, 3), resumed)
  train.train_and_evaluate(_coco_config(mini_coco, 5), resumed)   # resumes at step 3
  losses = lambda w: {m["step"]: m["train/loss"] for m in _metrics(w) if "train/loss" in m}
  a, b = losses(straight), losses(resumed)
  assert [a[s] for s in (4, 5)] == [b[s] for s in (4, 5)]   # bit-identical continuation


@pytest.mark.slow(seconds=45)
def test_deeplabv3_voc_config_trains_on_mini_voc(tmp_path):
  manual = tmp_path / "manual"
  voc_fixtures.make_archives(manual)
  config = deeplabv3_voc.get_config("width=0.35,res=41,batch=2")
  config.input.data_dir = str(tmp_path / "tfds")
  config.input.manual_dir = str(manual)
  config.input.eval_batch_size = 2
  summary = train.train_and_evaluate(_short(config, 3), str(tmp_path / "run"))
  assert summary["status"] == "finished" and summary["task"] == "segmentation"
  assert summary["metric"] == "mIoU" and 0.0 <= summary["final_metric"] <= 1.0
  last = [m for m in _metrics(str(tmp_path / "run")) if "eval/mIoU" in m][-1]
  assert last["eval/pixels"] > 0


@pytest.mark.parametrize("change,message", [
    (lambda c: c.head.update(dict(output_stride=32)), "head.output_stride must be one of"),
    (lambda c: c.head.update(dict(output_stride=12)), "head.output_stride must be one of"),
    (lambda c: c.head.update(dict(aspp=True, aspp_rates=(12, 24, 36))), "aspp_rates"),
    (lambda c: c.head.update(dict(dropout_rate=1.5)), "head.dropout_rate"),
    (lambda c: c.model.update(dict(shortcut="sideways")), "model.shortcut"),
])
def test_bad_segmentation_settings_fail_before_any_write(change, message, tmp_path, scenes_dir):
  config = deeplabv3_voc.get_config("width=0.35,res=65")
  change(config)
  with pytest.raises(ValueError, match=message):
    validate.check_model(config, 21)
  workdir = tmp_path / "run"
  config.input.dataset = "digit_scenes"   # prepares offline: the run gets to its model check
  config.input.data_dir = scenes_dir
  config.input.eval_split = "test"
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(_short(config, 1), str(workdir))
  assert not workdir.exists()


@pytest.mark.parametrize("change,message", [
    (lambda c: c.head.update(dict(name="yolo")), "head.name must be one of"),
    (lambda c: c.model.update(dict(output_stride=16)), "output_stride"),
    (lambda c: c.head.loss.update(dict(classification="hinge")), "classification"),
])
def test_bad_detection_settings_fail_before_any_write(change, message, tmp_path, scenes_dir):
  config = _coco_config(scenes_dir, 1)
  config.input.dataset = "digit_scenes"
  config.input.eval_split = "test"
  change(config)
  workdir = tmp_path / "run"
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


# ---- CPU-scale learning checks on real pixels (digit_scenes: NOT COCO / VOC) ----------------

LEARN_EPOCHS = {"detection": 3.0, "segmentation": 3.0}
MIN_MAP, MIN_MIOU = 0.02, 0.2


def _scenes(task, scenes_dir, epochs, res):
  from configs import scenes  # pylint: disable=g-import-not-at-top
  config = scenes.get_config(f"task={task},res={res},epochs={epochs}")
  config.input.data_dir = scenes_dir
  config.train.eval_every_epochs = epochs
  config.wandb.mode = "disabled"
  return config


def _untrained_map(config):
  """mAP of the same detector at its initial weights: what training must beat."""
  import jax  # pylint: disable=g-import-not-at-top
  from mnv2_jax import parallel  # pylint: disable=g-import-not-at-top
  from mnv2_jax.dense import data as dense_data  # pylint: disable=g-import-not-at-top
  from mnv2_jax.dense import detection  # pylint: disable=g-import-not-at-top
  model = validate.check_model(config, 10)
  res = config.input.resolution
  variables = model.init(jax.random.key(0), jax.numpy.zeros((1, res, res, 3)), train=False)
  out = detection.evaluate(jax.jit(detection.make_predict(model)), variables,
                           dense_data.eval_batches(config, "detection"), parallel.make_mesh(),
                           anchors=detection.anchors_for(model, res), num_classes=10,
                           postprocess_cfg=dict(config.head.postprocess),
                           loss_cfg=dict(config.head.loss))
  return out["eval/mAP"]


@pytest.mark.slow(seconds=120)
def test_ssdlite_learns_on_digit_scenes(scenes_dir, tmp_path):
  config = _scenes("detection", scenes_dir, epochs=LEARN_EPOCHS["detection"], res=96)
  summary = train.train_and_evaluate(config, str(tmp_path / "det"))
  baseline = _untrained_map(config)
  assert summary["final_metric"] > max(MIN_MAP, 10 * baseline), (summary["final_metric"],
                                                                  baseline)


@pytest.mark.slow(seconds=60)
def test_deeplab_learns_on_digit_scenes(scenes_dir, tmp_path):
  config = _scenes("segmentation", scenes_dir, epochs=LEARN_EPOCHS["segmentation"], res=64)
  config.head.output_stride = 8
  workdir = str(tmp_path / "seg")
  summary = train.train_and_evaluate(config, workdir)
  # Trivial baseline: every pixel background. IoU is then the background share of the pixels
  # on class 0 and 0 on the others, and the mean counts every class present (11 here).
  import numpy as np  # pylint: disable=g-import-not-at-top
  from mnv2_jax.dense import data as dense_data  # pylint: disable=g-import-not-at-top
  counts = np.zeros(256, np.int64)
  for batch in dense_data.eval_batches(config, "segmentation"):
    labels = batch["segmentation"][batch["mask"]]
    counts += np.bincount(labels.ravel(), minlength=256)
  present = int((counts[:255] > 0).sum())
  trivial = counts[0] / counts[:255].sum() / present
  assert summary["final_metric"] > max(MIN_MIOU, 3 * trivial), (summary["final_metric"],
                                                                trivial)
