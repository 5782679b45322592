"""`config.init` (mnv2_jax/backbone_init.py): a dense run's backbone from a trained classifier.

The classifier is a real `mnv2-train` run (configs/digits.py, 12 epochs: the session's, from
tests/shared_runs.py). The dense initial state is built by the functions the trainer calls;
the bad-setting checks go through `mnv2-train` on digit_scenes (prepared offline) and must
stop before any write. That a trained dense run really started from the classifier is checked
on the learning runs of tests/test_dense_learning.py. Nothing downloads.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

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
def classifier_run(digits_classifier):
  """A finished classifier run (0.35 wide, 32 px, linear bottleneck) on the bundled digits:
  the session's configs/digits.py run (tests/shared_runs.py), checkpointed once, at its last
  step."""
  return digits_classifier[0]


@pytest.fixture(scope="module")
def last_step(digits_classifier):
  return digits_classifier[1]["steps"]


def _dense_config(task, data_dir, source="run", path=None, steps=1):
  config = scenes.get_config(f"task={task},res=64,batch=8")
  config.input.data_dir = data_dir
  config.input.eval_batch_size = 100
  config.optim.warmup_epochs = 1 / 250   # one step: the warm-up must fit in the run
  config.init.update(source=source, path=path)
  return _short(config, steps)


def _leaf(tree, path):
  """The array at `path` (jax key path or names) of a nested dict; KeyError if absent."""
  node = tree
  for k in path:
    node = node[getattr(k, "key", k)]
  return np.asarray(node)


@pytest.mark.slow(seconds=30)
def test_the_initial_state_holds_the_classifier_backbone(classifier_run, last_step,
                                                         scenes_data_dir):
  """What the trainer does at step 0 (train_dense: `check` -> `backbone_init.load` ->
  `train_state.create(pretrained=...)`), shapes from the detector's own abstract init.

  That the trainer really starts there is checked end to end on the trained detector of
  tests/test_dense_learning.py (its backbone stays near the classifier's)."""
  config = _dense_config("detection", scenes_data_dir, path=classifier_run)
  _, _, model, _, source = train_dense.check(config)
  assert source == backbone_init.Source("run", classifier_run, last_step, False)
  tx = optax.sgd(0.1, momentum=0.9)
  create = lambda pretrained=None: train_state.create(model, tx, seed=config.seed,
                                                      resolution=64, ema=True,
                                                      pretrained=pretrained)
  abstract = jax.eval_shape(create)
  loaded = backbone_init.load(source, {"params": abstract.params,
                                       "batch_stats": abstract.batch_stats},
                              model.backbone, 64)
  # One program for both states (eagerly: ~4x slower).
  state, fresh = jax.jit(lambda pretrained: (create(pretrained), create()))(loaded)
  classifier = restore.restore(classifier_run).variables
  for collection in ("params", "batch_stats"):
    backbone = getattr(state, collection)["backbone"]
    leaves = jax.tree_util.tree_leaves_with_path(backbone)
    assert len(leaves) > 50
    for path, value in leaves:  # Every backbone array is the classifier's at the same path.
      np.testing.assert_array_equal(np.asarray(value), _leaf(classifier[collection], path),
                                    err_msg=f"{collection}{jax.tree_util.keystr(path)}")
    # ... and the EMA starts from the copy too.
    ema = getattr(state, f"ema_{collection}")["backbone"]
    jax.tree.map(np.testing.assert_array_equal, ema, backbone)
  # What the detector does not use is not copied; the head is the detector's own random init.
  assert "logits" in classifier["params"] and "logits" not in state.params["backbone"]
  assert "class_0_predict" in state.params and "class_0_predict" not in classifier["params"]
  jax.tree.map(np.testing.assert_array_equal, state.params["class_0_predict"],
               fresh.params["class_0_predict"])
  # The same run's random init differs: the equality above is the copy, not a coincidence.
  stem = ("stem", "conv", "conv", "kernel")
  assert not np.array_equal(_leaf(fresh.params["backbone"], stem),
                            _leaf(state.params["backbone"], stem))


def test_segmenter_backbone_from_a_keras_weights_file(scenes_data_dir, tmp_path):
  keras_model = randomised_keras(0.35, 96)
  path = str(tmp_path / "mnv2_035.weights.h5")
  keras_model.save_weights(path)
  config = _dense_config("segmentation", scenes_data_dir, source="keras", path=path)
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
    (dict(step=999), r"init.step=999 is not saved in .*; allowed: \[{last_step}\]"),
    (dict(path="/nonexistent/run"), "init.path='/nonexistent/run' has no config.json"),
])
def test_bad_init_fields_fail_before_any_write(change, message, classifier_run, last_step,
                                               scenes_data_dir, tmp_path):
  config = _dense_config("detection", scenes_data_dir, path=classifier_run)
  config.init.update(change)
  workdir = tmp_path / "run"
  with pytest.raises(ValueError, match=message.format(last_step=last_step)):
    train.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


@pytest.mark.parametrize("change,message", [
    (lambda c: c.model.update(bottleneck_activation="relu6"), "model.bottleneck_activation"),
    (lambda c: c.model.update(width_multiplier=0.5), "model.width_multiplier"),
    (lambda c: c.model.update(shortcut="none"), "model.shortcut"),
])
def test_a_different_architecture_is_rejected_naming_the_field(change, message,
                                                               classifier_run, scenes_data_dir,
                                                               tmp_path):
  config = _dense_config("detection", scenes_data_dir, path=classifier_run)
  change(config)
  workdir = tmp_path / "run"
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


def test_keras_source_checks(scenes_data_dir, tmp_path):
  config = _dense_config("detection", scenes_data_dir, source="keras",
                         path=str(tmp_path / "no.h5"))
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
