"""`config.init` (mnv2_jax/backbone_init.py): a dense run's backbone from a trained classifier.

The classifier is a real `mnv2-train` run (configs/digits.py, a few steps); the dense runs are
real `mnv2-train` runs on digit_scenes (prepared offline). Nothing downloads.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from configs import digits
from configs import scenes
from mnv2_jax import backbone_init
from mnv2_jax import restore
from mnv2_jax import train
from mnv2_jax import train_dense
from mnv2_jax import train_state
from tests.keras_helpers import randomised_keras


def _short(config, steps):
  config.train.update(num_steps=steps, log_every_steps=1, eval_every_steps=steps,
                      checkpoint_every_steps=steps)
  config.wandb.mode = "disabled"
  return config


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
  """A finished classifier run (0.35 wide, linear bottleneck) on the bundled digits."""
  workdir = str(tmp_path_factory.mktemp("classifier") / "run")
  config = _short(digits.get_config("width=0.35,res=32,batch=16"), 3)
  config.optim.warmup_epochs = 0.0
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("scenes"))


def _dense_config(task, scenes_dir, source="run", path=None, steps=1):
  config = scenes.get_config(f"task={task},res=64,batch=8")
  config.input.data_dir = scenes_dir
  config.input.eval_batch_size = 100
  # One warm-up step: the step's learning rate is 0 (optax's linear warm-up starts at 0), so
  # SGD leaves the parameters where init put them and the run's checkpoint shows the init.
  config.optim.warmup_epochs = 1 / 250
  config.init.update(source=source, path=path)
  return _short(config, steps)


def _saved_state(workdir):
  """The raw arrays of a run's newest checkpoint, as saved (no restore target)."""
  manager = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
  step = manager.latest_step()
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  manager.close()
  return restored["state"]


def _leaf(tree, path):
  """The array at `path` (jax key path or names) of a nested dict; KeyError if absent."""
  node = tree
  for k in path:
    node = node[getattr(k, "key", k)]
  return np.asarray(node)


@pytest.fixture(scope="module")
def detector_run(classifier_run, scenes_dir, tmp_path_factory):
  """A 1-step SSDLite run on digit_scenes with `init.source="run"` from `classifier_run`."""
  workdir = str(tmp_path_factory.mktemp("detector") / "run")
  summary = train.train_and_evaluate(
      _dense_config("detection", scenes_dir, path=classifier_run), workdir)
  assert summary["status"] == "finished" and summary["task"] == "detection"
  return workdir


@pytest.mark.slow(seconds=60)
def test_detector_starts_from_the_classifier_backbone(classifier_run, detector_run,
                                                      scenes_dir):
  saved = _saved_state(detector_run)["params"]
  classifier = restore.restore(classifier_run).variables["params"]
  backbone = saved["backbone"]
  leaves = jax.tree_util.tree_leaves_with_path(backbone)
  assert len(leaves) > 100
  for path, value in leaves:  # Every backbone array is the classifier's at the same path.
    np.testing.assert_array_equal(np.asarray(value), _leaf(classifier, path),
                                  err_msg=jax.tree_util.keystr(path))
  # What the detector does not use is not copied; the head is the detector's own.
  assert "logits" in classifier and "logits" not in backbone
  assert "class_0_predict" in saved and "class_0_predict" not in classifier
  # The same run's random init differs: the equality above is the copy, not a coincidence.
  config = _dense_config("detection", scenes_dir, source="none")
  model = train_dense.check(config)[2]
  fresh = train_state.create(model, optax.sgd(0.1), seed=config.seed, resolution=64, ema=False)
  stem = ("stem", "conv", "conv", "kernel")
  assert not np.array_equal(_leaf(fresh.params["backbone"], stem), _leaf(backbone, stem))


def test_segmenter_backbone_from_a_keras_weights_file(scenes_dir, tmp_path):
  keras_model = randomised_keras(0.35, 96)
  path = str(tmp_path / "mnv2_035.weights.h5")
  keras_model.save_weights(path)
  config = _dense_config("segmentation", scenes_dir, source="keras", path=path)
  _, _, model, _, source = train_dense.check(config)
  assert source == backbone_init.Source("keras", path, None, False)
  abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)),
                                               train=False))
  loaded = backbone_init.load(source, abstract, model.backbone, 64)
  params, stats = loaded["params"]["backbone"], loaded["batch_stats"]["backbone"]
  # Against Keras's own layers, by name (Keras kernels are HWIO like ours).
  np.testing.assert_array_equal(params["stem"]["conv"]["conv"]["kernel"],
                                keras_model.get_layer("Conv1").get_weights()[0])
  gamma, beta, mean, var = keras_model.get_layer("bn_Conv1").get_weights()
  np.testing.assert_array_equal(params["stem"]["conv"]["bn"]["scale"], gamma)
  np.testing.assert_array_equal(params["stem"]["conv"]["bn"]["bias"], beta)
  np.testing.assert_array_equal(stats["stem"]["conv"]["bn"]["mean"], mean)
  np.testing.assert_array_equal(stats["stem"]["conv"]["bn"]["var"], var)
  # Every array the segmenter's backbone declares was filled, with its declared shape.
  jax.tree.map(lambda a, b: np.testing.assert_equal(a.shape, b.shape), loaded["params"],
               {"backbone": abstract["params"]["backbone"]})
  assert "head" not in params  # DeepLab reads layer_18: Keras's last 1x1 conv is dropped.


@pytest.mark.parametrize("change,message", [
    (dict(source="somewhere"), "init.source must be one of"),
    (dict(path=None), "init.path must be set"),
    (dict(step=-2), "init.step must be"),
    (dict(step=999), r"init.step=999 is not saved in .*; allowed: \[3\]"),
    (dict(path="/nonexistent/run"), "init.path='/nonexistent/run' has no config.json"),
])
def test_bad_init_fields_fail_before_any_write(change, message, classifier_run, scenes_dir,
                                               tmp_path):
  config = _dense_config("detection", scenes_dir, path=classifier_run)
  config.init.update(change)
  workdir = tmp_path / "run"
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


@pytest.mark.parametrize("change,message", [
    (lambda c: c.model.update(bottleneck_activation="relu6"), "model.bottleneck_activation"),
    (lambda c: c.model.update(width_multiplier=0.5), "model.width_multiplier"),
    (lambda c: c.model.update(shortcut="none"), "model.shortcut"),
])
def test_a_different_architecture_is_rejected_naming_the_field(change, message,
                                                               classifier_run, scenes_dir,
                                                               tmp_path):
  config = _dense_config("detection", scenes_dir, path=classifier_run)
  change(config)
  workdir = tmp_path / "run"
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


def test_a_dense_run_is_not_a_backbone_source(detector_run, scenes_dir, tmp_path):
  config = _dense_config("segmentation", scenes_dir, path=detector_run)
  with pytest.raises(ValueError, match="is a ssdlite run; allowed: a classifier run"):
    train.train_and_evaluate(config, str(tmp_path / "run"))


def test_keras_source_checks(scenes_dir, tmp_path):
  config = _dense_config("detection", scenes_dir, source="keras", path=str(tmp_path / "no.h5"))
  with pytest.raises(ValueError, match="is not a file"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  (tmp_path / "w.weights.h5").write_bytes(b"")
  config.init.path = str(tmp_path / "w.weights.h5")
  config.model.bottleneck_activation = "relu6"   # Keras builds the paper's block only.
  with pytest.raises(ValueError, match="init.source='keras'.*bottleneck_activation"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  config.model.bottleneck_activation = "linear"
  config.init.step = 3
  with pytest.raises(ValueError, match="init.step and init.raw are for init.source='run'"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()
