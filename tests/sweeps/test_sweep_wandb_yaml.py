"""W&B sweep YAML: export -> yaml.safe_load -> expand gives exactly the exported runs, and the
agent shim turns each W&B point into the same workdir and overrides as ``mnv2-sweep``."""

from __future__ import annotations

import glob
import importlib.util
import json
import os

import pytest
import yaml

from mnv2_jax.sweeps import agent
from mnv2_jax.sweeps import combinators as C
from mnv2_jax.sweeps import plan as plan_lib
from mnv2_jax.sweeps import studies as studies_lib
from mnv2_jax.sweeps import wandb_yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDIES = sorted(glob.glob(os.path.join(REPO, "experiments", "[!_]*.py")))
PRESETS = ("paper", "imagenet_short", "small", "digits", "coco", "scenes_seg")


def _pairs():
  """(study path, preset) for the PRESETS each study supports."""
  out = []
  for path in STUDIES:
    spec = importlib.util.spec_from_file_location("study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out += [(path, p) for p in PRESETS if p in module.PRESETS]
  return out


def _doc(study, sweep_dir="runs/sweeps/g"):
  return wandb_yaml.to_doc(study=study.name, base_config=study.base_config, runs=study.runs,
                           sweep_dir=sweep_dir, group="g", tags=[study.name])


@pytest.mark.parametrize("path,preset", _pairs(), ids=lambda v: os.path.basename(str(v)))
def test_yaml_parses_back_to_the_same_override_set(path, preset):
  study = studies_lib.load(path, preset)
  doc = yaml.safe_load(wandb_yaml.dump(_doc(study)))
  assert doc["method"] == "grid"
  assert doc["command"][:4] == ["${env}", "${interpreter}", "-m", "mnv2_jax.sweeps.agent"]
  assert doc["command"][-1] == "${args}"
  base, runs = wandb_yaml.expand(doc)
  assert base == study.base_config
  assert len(runs) == len(study.runs)
  assert sorted(map(C.canonical, runs)) == sorted(map(C.canonical, study.runs))
  if wandb_yaml.RUN_OVERRIDES not in doc["parameters"]:
    assert all(k.startswith("config.") for k in doc["parameters"])


def test_product_studies_use_config_parameters_and_others_run_overrides():
  fig6b = studies_lib.load(os.path.join(REPO, "experiments", "fig6b_shortcut.py"), "digits")
  params = _doc(fig6b)["parameters"]
  assert params["config.model.shortcut"] == {"values": ["bottleneck", "expansion", "none"]}
  assert params["config.seed"] == {"values": [0, 1]}
  assert params["config.train.num_epochs"] == {"value": 12.0}
  fig5 = studies_lib.load(os.path.join(REPO, "experiments", "fig5_pareto.py"), "digits")
  params = _doc(fig5)["parameters"]
  assert list(params) == [wandb_yaml.RUN_OVERRIDES]  # Not a product: listed runs.
  assert len(params[wandb_yaml.RUN_OVERRIDES]["values"]) == 42


def test_product_detection():
  grid = C.product(C.sweep("a.b", [1, 2]), C.sweep("c", ["x", "y", "z"]))
  assert wandb_yaml.product_axes(grid) == [("a.b", [1, 2]), ("c", ["x", "y", "z"])]
  assert wandb_yaml.product_axes(grid[:-1]) is None                 # one run missing
  assert wandb_yaml.product_axes(grid + grid[:1]) is None           # a duplicate
  assert wandb_yaml.product_axes(C.zipit(C.sweep("a", [1, 2]), C.sweep("b", [3, 4]))) is None
  assert wandb_yaml.product_axes(C.chain(C.sweep("a", [1]), C.sweep("b", [2]))) is None


def test_tuple_values_survive_the_round_trip():
  runs = C.product(C.fixed({"wandb.tags": ("x", "y")}), C.sweep("seed", [0, 1]))
  doc = yaml.safe_load(wandb_yaml.dump(wandb_yaml.to_doc(
      study="s", base_config="configs/digits.py", runs=runs, sweep_dir="d", group="g")))
  assert wandb_yaml.expand(doc)[1] == runs


@pytest.mark.parametrize("study_name", ["fig6b_shortcut", "fig5_pareto"])
def test_agent_shim_matches_the_launcher(study_name, tmp_path):
  """Each W&B point, as ``${args}`` would pass it, gives the launcher's workdir and command."""
  study = studies_lib.load(os.path.join(REPO, "experiments", f"{study_name}.py"), "digits",
                           seeds=1)
  sweep_dir = str(tmp_path / "sweep")
  plan = plan_lib.build_plan([study], group="g")
  by_name = {r.name: r for r in plan.runs}
  doc = yaml.safe_load(wandb_yaml.dump(_doc(study, sweep_dir)))
  fixed_args = [a for a in doc["command"][4:] if a != "${args}"]
  seen = set()
  for point in wandb_yaml.points(doc):
    workdir, command = agent.trainer_command(fixed_args + wandb_yaml.wandb_args(point))
    name = os.path.basename(workdir)
    assert workdir == plan.run_dir(sweep_dir, by_name[name])
    assert command[1:3] == ["-m", "mnv2_jax.main"]
    assert f"--config.wandb.name={name}" in command and "--config.wandb.group=g" in command
    seen.add(name)
  assert seen == set(by_name)
  # A finished run is skipped by the shim (exit 0, no trainer).
  first = wandb_yaml.points(doc)[0]
  workdir, _ = agent.trainer_command(fixed_args + wandb_yaml.wandb_args(first))
  os.makedirs(workdir)
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump({"status": "finished"}, f)
  assert agent.trainer_command(fixed_args + wandb_yaml.wandb_args(first)) == (workdir, None)
  assert agent.main(fixed_args + wandb_yaml.wandb_args(first)) == 0
