"""Every experiment file x every preset expands into valid, uniquely named runs.

"Valid" means what the launcher checks before starting anything: each run's config parses
through ``ml_collections.config_flags`` (fresh FlagValues, ``sys_argv=``) with its overrides,
and its model (MobileNetV2/V1) constructs and expands at the run's resolution.
"""

from __future__ import annotations

import glob
import os

import pytest

from mnv2_jax.sweeps import naming
from mnv2_jax.sweeps import plan as plan_lib
from mnv2_jax.sweeps import resolve
from mnv2_jax.sweeps import studies as studies_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDIES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "experiments",
                                                                     "[!_]*.py")))
PRESETS = ("paper", "imagenet_short", "small", "digits", "fashion")
# Runs at the default number of seeds; these are the counts the docstrings state.
EXPECTED = {
    "fig6a_nonlinearity.py": {"paper": 2, "imagenet_short": 6, "small": 6, "digits": 4, "fashion": 6},
    "fig6b_shortcut.py": {"paper": 3, "imagenet_short": 9, "small": 9, "digits": 6, "fashion": 9},
    "fig5_pareto.py": {"paper": 37, "imagenet_short": 111, "small": 111, "digits": 42, "fashion": 51},
    "variant_pareto.py": {"paper": 126, "imagenet_short": 378, "small": 378, "digits": 156, "fashion": 162},
    "fig6_pareto.py": {"paper": 12, "imagenet_short": 36, "small": 36, "digits": 24, "fashion": 36},
    "expansion_rate.py": {"paper": 14, "imagenet_short": 42, "small": 42, "digits": 28, "fashion": 42},
    "dense_fig6.py": {"coco": 4, "voc": 4, "scenes_det": 8, "scenes_seg": 8},
}
# Each study with the presets it supports (EXPECTED's keys, checked against its PRESETS).
PAIRS = [(study, preset) for study in STUDIES for preset in EXPECTED.get(study, PRESETS)]


def test_every_experiment_file_is_covered():
  assert STUDIES == sorted(EXPECTED)


@pytest.mark.parametrize("study,preset", PAIRS)
def test_expands_to_valid_uniquely_named_runs(study, preset):
  path = os.path.join("experiments", study)
  s = studies_lib.load(path, preset)
  assert sorted(s.module.PRESETS) == sorted(EXPECTED[study])
  assert s.module.__doc__ and "expected compute" in s.module.__doc__.lower()
  assert len(s.runs) == EXPECTED[study][preset]
  if preset in ("imagenet_short", "small", "fashion", "scenes_det", "scenes_seg"):
    # 3 seeds of the same grid; validating one seed keeps the suite fast (the seed
    # axis itself is covered by the other presets and test_seeds_are_an_axis).
    s = studies_lib.load(path, preset, seeds=1)
  plan = plan_lib.build_plan([s], group="test")
  assert len(plan.runs) == len(s.runs)
  names = [r.name for r in plan.runs]
  assert len(set(names)) == len(names)
  for run in plan.runs:
    assert run.name == naming.run_name(run.config, plan.name_keys)
    for key, value in run.overrides.items():  # The override really landed in the config.
      got = resolve.get_path(run.config, key)
      assert got == value, (run.name, key, got, value)
    assert run.config.input.dataset  # The base config's own fields are intact.


def test_seeds_are_an_axis():
  one = studies_lib.load("experiments/fig6b_shortcut.py", "digits", seeds=1)
  three = studies_lib.load("experiments/fig6b_shortcut.py", "digits", seeds=3)
  assert len(one.runs) == 3 and len(three.runs) == 9
  assert sorted({r["seed"] for r in three.runs}) == [0, 1, 2]


def test_launch_order_is_seed_major_and_otherwise_as_planned():
  plan = plan_lib.build_plan([studies_lib.load("experiments/fig6b_shortcut.py", "digits",
                                               seeds=3)], group="g")
  order = plan.launch_order()
  assert sorted(r.name for r in order) == sorted(r.name for r in plan.runs)
  seeds = [r.config.seed for r in order]
  assert seeds == sorted(seeds) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
  for seed in (0, 1, 2):  # within a seed, the planned order
    planned = [r.name for r in plan.runs if r.config.seed == seed]
    assert [r.name for r in order if r.config.seed == seed] == planned
  assert [r.config.seed for r in plan.runs] != seeds  # the plan itself is seed-minor


def test_names_and_shared_baseline_dedupe():
  studies = [studies_lib.load(f"experiments/{n}.py", "digits")
             for n in ("fig6a_nonlinearity", "fig6b_shortcut")]
  plan = plan_lib.build_plan(studies, group="g")
  assert sum(len(s.runs) for s in studies) == 10
  assert len(plan.runs) == 8  # The linear/bottleneck baseline (x2 seeds) runs once.
  by_name = {r.name: r for r in plan.runs}
  base = by_name["v2_w0.35_r32_linear_bottleneck_s0"]
  assert base.studies == ["fig6a_nonlinearity", "fig6b_shortcut"]
  assert {"fig6a_nonlinearity", "fig6b_shortcut", "digits", "shortcut=bottleneck"} <= set(
      base.tags)
  assert "v2_w0.35_r32_relu6_bottleneck_s1" in by_name
  assert "v2_w0.35_r32_linear_none_s1" in by_name
  argv = base.argv("/sweep/" + base.name, "g")
  assert "--config.wandb.group=g" in argv
  assert f"--config.wandb.name={base.name}" in argv
  assert "--config=configs/digits.py" in argv and f"--workdir=/sweep/{base.name}" in argv
  fig5 = plan_lib.build_plan([studies_lib.load("experiments/fig5_pareto.py", "paper")], "g")
  names = {r.name for r in fig5.runs}
  assert {"v2_w1.4_r224_linear_bottleneck_s0", "v1_w0.25_r128_s0"} <= names


def test_main_job_study_is_the_fig6_digits_runs_at_three_points_and_8_epochs():
  fig6 = plan_lib.build_plan([studies_lib.load(f"experiments/{n}.py", "digits")
                              for n in ("fig6a_nonlinearity", "fig6b_shortcut")], "g")
  pareto = plan_lib.build_plan([studies_lib.load("experiments/fig6_pareto.py", "digits")], "g")
  by_name = {r.name: r for r in pareto.runs}
  assert {(r.config.model.width_multiplier, r.config.input.resolution) for r in pareto.runs} == {
      (0.35, 32), (0.35, 40), (0.5, 32)}
  assert {r.config.train.num_epochs for r in pareto.runs} == {8.0}   # the README's budget
  assert {r.config.train.num_epochs for r in fig6.runs} == {12.0}    # fig6a/b unchanged
  for run in fig6.runs:  # at 0.35/32: the same names and configs, but for the run length
    want = run.config.to_dict()
    want["train"]["num_epochs"] = 8.0
    got = by_name[run.name].config.to_dict()
    assert got == want | {"wandb": got["wandb"]}


def test_expansion_rate_sweeps_t_at_two_widths():
  plan = plan_lib.build_plan([studies_lib.load("experiments/expansion_rate.py", "digits",
                                               seeds=1)], "g")
  names = [r.name for r in plan.runs]
  assert names[:7] == [f"v2_w0.35_r32_linear_bottleneck{t}_s0" for t in
                       ("_t2", "_t3", "_t4", "_t5", "", "_t8", "_t10")]
  assert {r.config.model.width_multiplier for r in plan.runs} == {0.35, 0.5}
  assert sorted({r.config.model.expansion_factor for r in plan.runs}) == [2, 3, 4, 5, 6, 8, 10]


def test_preset_arg_reaches_the_config():
  s = studies_lib.load("experiments/fig6a_nonlinearity.py",
                       "small:dataset=imagenette/160px-v2,res=128", seeds=1)
  assert s.base_config == "configs/small.py:dataset=imagenette/160px-v2,res=128"
  plan = plan_lib.build_plan([s], group="g")
  assert {r.config.input.dataset for r in plan.runs} == {"imagenette/160px-v2"}
  assert {r.name for r in plan.runs} == {"v2_w1.0_r128_linear_bottleneck_s0",
                                         "v2_w1.0_r128_relu6_bottleneck_s0"}


def test_varying_non_canonical_keys_enter_the_name():
  s = studies_lib.Study("lr", "x.py", "digits", "configs/digits.py",
                        ({"optim.base_lr": 0.1, "seed": 0}, {"optim.base_lr": 0.2, "seed": 0}),
                        module=None)
  plan = plan_lib.build_plan([s], group="g")
  assert [r.name for r in plan.runs] == ["v2_w0.35_r32_linear_bottleneck_base_lr0.1_s0",
                                         "v2_w0.35_r32_linear_bottleneck_base_lr0.2_s0"]


@pytest.mark.parametrize("overrides,needle", [
    ({"model.shortcutt": "none"}, "shortcutt"),            # unknown key (locked config)
    ({"model.shortcut": "sideways"}, "shortcut"),          # model rejects the value
    ({"input.resolution": "abc"}, "resolution"),           # wrong type
    ({"input.resolution": 16}, "resolution"),              # below the model's minimum
    ({"model.name": "resnet50"}, "model.name"),            # unknown model
])
def test_invalid_runs_fail_before_anything_runs(overrides, needle):
  good = {"seed": 0}
  s = studies_lib.Study("bad", "x.py", "digits", "configs/digits.py", (good, overrides),
                        module=None)
  with pytest.raises(plan_lib.PlanError) as e:
    plan_lib.build_plan([s], group="g")
  assert needle in str(e.value) and "1 invalid run" in str(e.value)


def test_name_collision_between_different_configs_is_an_error(monkeypatch):
  a = studies_lib.Study("a", "a.py", "digits", "configs/digits.py", ({"seed": 0},), None)
  b = studies_lib.Study("b", "b.py", "digits", "configs/digits.py",
                        ({"seed": 0, "train.num_epochs": 1.0},), None)
  assert len(plan_lib.build_plan([a, b], group="g").runs) == 2  # num_epochs enters names.
  monkeypatch.setattr(naming, "varying_keys", lambda runs: [])  # Hide it: names collide.
  with pytest.raises(plan_lib.PlanError, match="already used"):
    plan_lib.build_plan([a, b], group="g")
