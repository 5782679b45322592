"""Ablation axes as data: the declarations, and a throwaway axis reaching names, results, plots.

The throwaway axis is declared in this file only (`ablations.register`), as a researcher would
declare a new one; nothing else in the package is edited, and the test checks that its values
appear in run names, W&B tags, result groups, paired deltas and figure labels.
"""

import dataclasses
import inspect

import pytest

from configs import common
from configs import digits
from mnv2_jax import ablations
from mnv2_jax import spec
from mnv2_jax import train_state
from mnv2_jax.models import MobileNetV2
from mnv2_jax.plots import fig5
from mnv2_jax.plots import fig6
from mnv2_jax.results import collect
from mnv2_jax.results import tables
from mnv2_jax.results import testing
from mnv2_jax.sweeps import naming


def test_every_axis_is_declared_once_and_read_by_spec_model_and_config():
  v2 = ablations.axes("mobilenet_v2")
  assert [a.path for a in v2] == ["model.bottleneck_activation", "model.shortcut",
                                  "model.expansion_factor", "model.depthwise_kernel"]
  keywords = inspect.signature(spec.mobilenet_v2_spec).parameters
  fields = {f.name: f.default for f in dataclasses.fields(MobileNetV2)}
  config = common.model_config()
  for axis in v2:
    assert keywords[axis.field].default == axis.baseline, axis.path
    assert fields[axis.field] == axis.baseline, axis.path
    assert config[axis.field] == axis.baseline, axis.path
  assert not ablations.axes("mobilenet_v1")


def test_config_model_section_is_the_model_fields():
  fields = {f.name for f in dataclasses.fields(MobileNetV2)} - {"parent", "name", "num_classes"}
  assert set(common.model_config()) == fields | {"name"}


@pytest.mark.parametrize("path, value, allowed", [
    ("model.depthwise_kernel", 7, "(3, 5)"),
    ("model.shortcut", "expanshun", "('bottleneck', 'expansion', 'none')"),
    ("model.expansion_factor", 0.5, ">= 1"),
])
def test_bad_axis_value_names_the_field_and_the_allowed_values(path, value, allowed):
  with pytest.raises(ValueError) as e:
    spec.mobilenet_v2_spec(**{path.split(".")[1]: value})
  assert path in str(e.value) and allowed in str(e.value)


def test_bookkeeping_keys_are_not_experiment_keys():
  flat = ablations.flatten({"wandb": {"name": "x"}, "train": {"log_every_steps": 5,
                                                                "num_epochs": 3.0},
                            "optim": {"base_lr": 0.1}, "model": {"impl": {"depthwise": "xla"}}})
  assert ablations.experiment_keys(flat) == {"train.num_epochs": 3.0, "optim.base_lr": 0.1}


@pytest.fixture
def throwaway_axis():
  axis = ablations.register(ablations.Axis(
      "model.se_ratio", 0.0, (0.0, 0.25), "se", "Squeeze-excite ratio", changes_compute=False,
      value_labels=((0.25, "SE 1/4"),)))
  try:
    yield axis
  finally:
    ablations.unregister(axis.path)
  assert "model.se_ratio" not in naming.named_keys()


def test_a_throwaway_axis_reaches_names_tags_groups_deltas_and_plots(throwaway_axis, tmp_path):
  config = digits.get_config()
  with config.unlocked():
    config.model.se_ratio = 0.25
  assert naming.run_name(config) == "v2_w0.35_r32_linear_bottleneck_se0.25_s0"
  assert "se_ratio=0.25" in naming.variant_tags(config)
  config.model.se_ratio = 0.0
  assert naming.run_name(config) == "v2_w0.35_r32_linear_bottleneck_s0"  # baseline: not shown
  assert "model.se_ratio" in naming.named_keys()

  curve = lambda top1: [(10, top1 - 0.2), (20, top1)]  # pylint: disable=unnecessary-lambda-assignment
  for seed, (base, se) in enumerate(((0.80, 0.85), (0.82, 0.88))):
    testing.write_run(str(tmp_path / f"base_s{seed}"), seed=seed, curve=curve(base))
    testing.write_run(str(tmp_path / f"se_s{seed}"), seed=seed, curve=curve(se),
                      axes={"se_ratio": 0.25})
  records = collect.collect(str(tmp_path))
  assert {r.variant for r in records} == {"linear/bottleneck", "linear/bottleneck/se0.25"}

  aggregate = {r["variant"]: r for r in tables.aggregate_rows(records)}
  assert aggregate["linear/bottleneck/se0.25"]["n"] == aggregate["linear/bottleneck"]["n"] == 2
  assert aggregate["linear/bottleneck/se0.25"]["final_top1_mean"] == pytest.approx(86.5)
  (delta,) = tables.delta_rows(records)
  assert delta["variant"] == "linear/bottleneck/se0.25"
  assert delta["delta_mean"] == pytest.approx(5.5)
  assert delta["sentence"].startswith("se_ratio=0.25 is 5.50")
  assert "below" not in delta["sentence"] and "se_ratio=0.0" in delta["sentence"]

  ((_, fig),) = fig6.figures(records)
  (ax,) = fig.axes
  assert "squeeze-excite ratio" in ax.get_title()
  assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == [
      "SE 1/4 (n=2)", "Squeeze-excite ratio 0 (n=2)"]
  points = fig5.aggregate_points(records)
  assert set(points) == {"linear/bottleneck", "linear/bottleneck/se0.25"}
  assert points["linear/bottleneck/se0.25"][0].legend == "SE 1/4"


def test_an_axis_without_its_model_field_is_a_clear_error(throwaway_axis):
  del throwaway_axis
  with pytest.raises(ValueError, match=r"no field for the declared axes \['model.se_ratio'\]"):
    train_state.build_model(common.model_config(), 10)


def test_expansion_and_kernel_axes_name_runs_and_change_compute():
  config = digits.get_config()
  config.model.expansion_factor = 4.0
  config.model.depthwise_kernel = 5
  assert naming.run_name(config) == "v2_w0.35_r32_linear_bottleneck_t4_k5_s0"
  assert naming.run_name(digits.get_config()) == "v2_w0.35_r32_linear_bottleneck_s0"
  assert all(a.changes_compute for a in ablations.axes()
             if a.field in ("expansion_factor", "depthwise_kernel"))
