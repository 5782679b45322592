"""Every config file loads, with its args, through config_flags with overrides, and validates."""

import importlib
import subprocess
import sys

from absl import flags
from ml_collections import config_flags
import pytest

from mnv2_jax import validate
from mnv2_jax.ops.impl import Impl
from tests.train.helpers import ROOT

CONFIGS = {
    "digits": [None, "width=0.5,res=48", "epochs=3"],
    "imagenet": [None, "width=0.35,res=96,schedule=paper", "model=mobilenet_v1"],
    "imagenet_sgd": [None, "width=0.75,res=160,epochs=90"],
    "small": [None, "dataset=imagenette/160px-v2,res=128"],
    "fashion": [None, "eval_split=validation", "width=0.5,epochs=3"],
}


@pytest.mark.parametrize("name, arg", [(n, a) for n, args in CONFIGS.items() for a in args])
def test_config_passes_every_field_check_and_builds_its_model(name, arg):
  """What `mnv2-sweep` checks before any run (the trainer adds the dataset's real sizes)."""
  config = importlib.import_module(f"configs.{name}").get_config(arg)
  validate.check_fields(config)
  model = validate.check_model(config, num_classes=1000)
  assert model.width_multiplier == config.model.width_multiplier
  assert model.impl == Impl.from_config(config.model.impl)


def test_paper_schedule_arg():
  imagenet = importlib.import_module("configs.imagenet")
  assert imagenet.get_config("schedule=paper").optim.decay_epochs == 1.0
  assert imagenet.get_config().optim.decay_epochs == 2.5
  assert imagenet.get_config().optim.name == "rmsprop_tf"
  with pytest.raises(ValueError, match="schedule must be one of"):
    imagenet.get_config("schedule=weekly")
  with pytest.raises(ValueError, match="unknown config arg 'depth'"):
    imagenet.get_config("depth=3")


def test_config_flags_overrides_and_lock():
  argv = ["prog", f"--config={ROOT}/configs/digits.py:width=0.5",
          "--config.model.shortcut=expansion", "--config.seed=3",
          '--config.wandb.tags=("a", "b")']
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=fv, lock_config=True, sys_argv=argv)
  fv(argv)
  config = fv.config
  assert config.model.width_multiplier == 0.5 and config.model.shortcut == "expansion"
  assert config.seed == 3 and tuple(config.wandb.tags) == ("a", "b")
  with pytest.raises(AttributeError):
    config.model.new_field = 1


def test_unknown_override_key_fails_fast(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "mnv2_jax.main", f"--workdir={tmp_path}/run",
       "--config.model.shortcutt=expansion"], cwd=ROOT, capture_output=True, text=True,
      timeout=300)
  assert proc.returncode != 0
  assert "shortcutt" in proc.stderr
  assert not (tmp_path / "run").exists()


DENSE_CONFIGS = {
    "ssdlite_coco": [None, "width=0.5,res=300", "head=ssd"],
    "deeplabv3_voc": [None, "os=8,aspp", "width=0.5,res=321"],
    "scenes": ["task=detection", "task=segmentation"],
}


@pytest.mark.parametrize("name, arg", [(n, a) for n, args in DENSE_CONFIGS.items()
                                       for a in args])
def test_dense_config_passes_every_field_check_and_builds_its_model(name, arg):
  config = importlib.import_module(f"configs.{name}").get_config(arg)
  validate.check_fields(config)
  model = validate.check_model(config, num_classes=21)
  assert model.backbone.width_multiplier == config.model.width_multiplier
  assert model.backbone.impl == Impl.from_config(config.model.impl)
  model.task(config.input.resolution)  # the head's spec expands at the config's size
