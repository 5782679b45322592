"""`mnv2-train` with a `head` section (mnv2_jax/train_dense.py): the COCO and VOC configs end
to end on miniature real-builder datasets, exact resume, and bad settings rejected early.

Data: `coco/2017` is the REAL tfds builder run on a miniature official download
(tests/data/coco_fixtures.py); `voc2012_segmentation` the project's builder on miniature
official archives (tests/data/voc_fixtures.py). Nothing downloads.
"""

import json
import os
import shutil
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

  # A crash after step 5 was logged but before its checkpoint landed: the same workdir with
  # only the step-3 checkpoint the run wrote (and no finished summary). The same config runs
  # again (its compiled programs come from the compile cache) and resumes at step 3.
  resumed = str(tmp_path / "resumed")
  shutil.copytree(straight, resumed)
  assert sorted(os.listdir(os.path.join(resumed, "checkpoints"))) == ["3", "5"]
  shutil.rmtree(os.path.join(resumed, "checkpoints", "5"))
  os.remove(os.path.join(resumed, "summary.json"))
  train.train_and_evaluate(_coco_config(mini_coco, 5), resumed)
  losses = lambda w: {m["step"]: m["train/loss"] for m in _metrics(w) if "train/loss" in m}
  a, b = losses(straight), losses(resumed)
  assert [a[s] for s in (4, 5)] == [b[s] for s in (4, 5)]   # bit-identical continuation
  resumed_rows = [m["step"] for m in _metrics(resumed) if "train/loss" in m]
  assert resumed_rows == [1, 2, 3, 4, 5]   # steps 4-5 logged again, once, by the resumed run


@pytest.mark.slow(seconds=45)
def test_deeplabv3_voc_config_trains_on_mini_voc(tmp_path):
  """With ASPP at OS 16 (rates 6/12/18 on a 3x3 feature map): the train step runs the dilated
  depthwise convs of the backbone's last stage and the head's dilated 3x3 convs, with rates
  larger than the map (their outer taps read only padding). OS 8 took ~35 s more to compile
  (two test workers on 2 cores); its dilated depthwise convs are checked against a reference in
  tests/ops/test_depthwise_dilated.py."""
  manual = tmp_path / "manual"
  voc_fixtures.make_archives(manual)
  config = deeplabv3_voc.get_config("width=0.35,res=41,batch=2,aspp")
  config.input.data_dir = str(tmp_path / "tfds")
  config.input.manual_dir = str(manual)
  config.input.eval_batch_size = 2
  summary = train.train_and_evaluate(_short(config, 3), str(tmp_path / "run"))
  assert summary["status"] == "finished" and summary["task"] == "segmentation"
  assert summary["metric"] == "mIoU" and 0.0 <= summary["final_metric"] <= 1.0
  rows = _metrics(str(tmp_path / "run"))
  last = [m for m in rows if "eval/mIoU" in m][-1]
  assert last["eval/pixels"] > 0
  grad_norms = [m["train/grad_norm"] for m in rows if "train/grad_norm" in m]
  assert len(grad_norms) == 3 and all(0 < g < float("inf") for g in grad_norms)


@pytest.mark.parametrize("change,message", [
    (lambda c: c.head.update(dict(output_stride=32)), "head.output_stride must be one of"),
    (lambda c: c.head.update(dict(output_stride=12)), "head.output_stride must be one of"),
    (lambda c: c.head.update(dict(aspp=True, aspp_rates=(12, 24, 36))), "aspp_rates"),
    (lambda c: c.head.update(dict(dropout_rate=1.5)), "head.dropout_rate"),
    (lambda c: c.model.update(dict(shortcut="sideways")), "model.shortcut"),
])
def test_bad_segmentation_settings_fail_before_any_write(change, message, tmp_path,
                                                        scenes_data_dir):
  config = deeplabv3_voc.get_config("width=0.35,res=65")
  change(config)
  with pytest.raises(ValueError, match=message):
    validate.check_model(config, 21)
  workdir = tmp_path / "run"
  config.input.dataset = "digit_scenes"   # prepares offline: the run gets to its model check
  config.input.data_dir = scenes_data_dir
  config.input.eval_split = "test"
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(_short(config, 1), str(workdir))
  assert not workdir.exists()


@pytest.mark.parametrize("change,message", [
    (lambda c: c.head.update(dict(name="yolo")), "head.name must be one of"),
    (lambda c: c.model.update(dict(output_stride=16)), "output_stride"),
    (lambda c: c.head.loss.update(dict(classification="hinge")), "classification"),
])
def test_bad_detection_settings_fail_before_any_write(change, message, tmp_path, scenes_data_dir):
  config = _coco_config(scenes_data_dir, 1)
  config.input.dataset = "digit_scenes"
  config.input.eval_split = "test"
  change(config)
  workdir = tmp_path / "run"
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()

