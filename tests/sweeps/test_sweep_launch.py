"""``mnv2-sweep`` end to end with a fake trainer: dry run, command list, YAML export,
resumability (finished runs skipped, interrupted ones relaunched), failures, validation."""

from __future__ import annotations

import json
import os
import shlex
import sys

import yaml

from mnv2_jax.sweeps import launch
from mnv2_jax.sweeps import wandb_yaml

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_trainer.py")
FIG6A = "experiments/fig6a_nonlinearity.py"
FIG6B = "experiments/fig6b_shortcut.py"
TRAINER = f"{sys.executable} {FAKE}"


def _invocations(sweep_dir):
  path = os.path.join(sweep_dir, "invocations.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f]


def _launched(sweep_dir):
  return sorted(os.path.basename(next(a for a in argv if a.startswith("--workdir=")))
                for argv in _invocations(sweep_dir))


def test_dry_run_prints_commands_and_runs_nothing(tmp_path, capsys):
  sweep_dir = str(tmp_path / "s")
  assert launch.main([FIG6A, FIG6B, "--preset=digits", f"--sweep_dir={sweep_dir}",
                      "--dry_run"]) == 0
  out = capsys.readouterr().out.strip().splitlines()
  assert len(out) == 8  # 10 requested, the shared baseline twice
  for line in out:
    argv = shlex.split(line)
    assert argv[1:3] == ["-m", "mnv2_jax.main"]
    assert any(a.startswith(f"--workdir={sweep_dir}/v2_w0.35_r32_") for a in argv)
  assert not os.path.exists(sweep_dir)


def test_emit_commands_and_wandb_yaml(tmp_path, capsys):
  sweep_dir = str(tmp_path / "s")
  assert launch.main([FIG6B, "--preset=digits", f"--sweep_dir={sweep_dir}",
                      "--emit=commands"]) == 0
  with open(os.path.join(sweep_dir, "commands.txt")) as f:
    lines = f.read().strip().splitlines()
  assert len(lines) == 6 and all(shlex.split(l)[:3] == ["python", "-m", "mnv2_jax.main"]
                                 for l in lines)
  assert capsys.readouterr().out.strip().splitlines() == lines
  assert launch.main([FIG6B, "--preset=digits", f"--sweep_dir={sweep_dir}",
                      "--emit=wandb_yaml", "--group=grp"]) == 0
  with open(os.path.join(sweep_dir, "wandb_sweeps", "fig6b_shortcut.yaml")) as f:
    doc = yaml.safe_load(f)
  assert f"--sweep_dir={sweep_dir}" in doc["command"] and "--group=grp" in doc["command"]
  assert len(wandb_yaml.expand(doc)[1]) == 6
  with open(os.path.join(sweep_dir, "sweep.json")) as f:
    assert len(json.load(f)["runs"]) == 6
  assert _invocations(sweep_dir) == []  # Emitting never launches.


def test_resume_skips_finished_and_relaunches_the_rest(tmp_path):
  sweep_dir = str(tmp_path / "s")
  args = [FIG6A, "--preset=digits", "--seeds=2", f"--sweep_dir={sweep_dir}",
          f"--trainer={TRAINER}", "--group=grp"]
  names = ["v2_w0.35_r32_linear_bottleneck_s0", "v2_w0.35_r32_linear_bottleneck_s1",
           "v2_w0.35_r32_relu6_bottleneck_s0", "v2_w0.35_r32_relu6_bottleneck_s1"]
  # One finished, one interrupted (summary says running), one with files but no summary.
  for name, summary in ((names[0], {"status": "finished"}), (names[1], {"status": "running"}),
                        (names[2], None)):
    os.makedirs(os.path.join(sweep_dir, name))
    if summary:
      with open(os.path.join(sweep_dir, name, "summary.json"), "w") as f:
        json.dump(summary, f)
    else:
      open(os.path.join(sweep_dir, name, "metrics.jsonl"), "w").close()
  assert launch.main(args + ["--parallel=2"]) == 0
  assert _launched(sweep_dir) == names[1:]
  argv = next(a for a in _invocations(sweep_dir) if f"--workdir={sweep_dir}/{names[1]}" in a)
  assert "--config.seed=1" in argv and "--config.wandb.group=grp" in argv
  assert os.path.exists(os.path.join(sweep_dir, names[1], "launch.log"))
  assert launch.main(args) == 0  # Everything finished: nothing is launched again.
  assert len(_invocations(sweep_dir)) == 3
  with open(os.path.join(sweep_dir, "sweep.json")) as f:
    manifest = json.load(f)
  assert [r["name"] for r in manifest["runs"]] == names


def test_failed_runs_give_exit_1_and_are_retried(tmp_path, monkeypatch):
  sweep_dir = str(tmp_path / "s")
  args = [FIG6A, "--preset=digits", "--seeds=1", f"--sweep_dir={sweep_dir}",
          f"--trainer={TRAINER}"]
  monkeypatch.setenv("FAKE_TRAINER_FAIL", "relu6")
  assert launch.main(args) == 1
  monkeypatch.delenv("FAKE_TRAINER_FAIL")
  assert launch.main(args) == 0
  assert _launched(sweep_dir) == ["v2_w0.35_r32_linear_bottleneck_s0",
                                  "v2_w0.35_r32_relu6_bottleneck_s0",
                                  "v2_w0.35_r32_relu6_bottleneck_s0"]


def test_only_filters_runs(tmp_path):
  sweep_dir = str(tmp_path / "s")
  assert launch.main([FIG6B, "--preset=digits", f"--sweep_dir={sweep_dir}",
                      f"--trainer={TRAINER}", "--only=_none_s1$"]) == 0
  assert _launched(sweep_dir) == ["v2_w0.35_r32_linear_none_s1"]


def test_bad_study_or_preset_fails_before_launch(tmp_path, capsys):
  sweep_dir = str(tmp_path / "s")
  bad = tmp_path / "bad_study.py"
  bad.write_text(
      "from mnv2_jax.sweeps import combinators as C, presets\n"
      "PRESETS = presets.select('digits')\n"
      "def get_sweep(preset, seeds=None):\n"
      "  return 'configs/digits.py', C.sweep('model.shortcut', ['bottleneck', 'sideways'])\n")
  assert launch.main([str(bad), "--preset=digits", f"--sweep_dir={sweep_dir}",
                      f"--trainer={TRAINER}"]) == 2
  assert "sideways" in capsys.readouterr().err
  assert launch.main([FIG6A, "--preset=nope", f"--sweep_dir={sweep_dir}"]) == 2
  assert not os.path.exists(sweep_dir)


def test_set_adds_typed_overrides_to_every_run(tmp_path, capsys):
  assert launch.parse_sets(["train.num_steps=20", "input.data_dir=/data/tfds", "a.b=1.5",
                            "c=true", "config.d=x,y"]) == {
                                "train.num_steps": 20, "input.data_dir": "/data/tfds",
                                "a.b": 1.5, "c": True, "d": "x,y"}
  sweep_dir = str(tmp_path / "s")
  assert launch.main([FIG6A, "--preset=digits", "--seeds=1", f"--sweep_dir={sweep_dir}",
                      "--dry_run", "--set", "train.num_steps=20",
                      "--set", "train.num_epochs=3"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 2
  for line in lines:
    argv = shlex.split(line)
    assert "--config.train.num_steps=20" in argv and "--config.train.num_epochs=3" in argv
    assert "--config.train.num_epochs=12.0" not in argv   # --set wins over the preset
  assert launch.main([FIG6A, "--preset=digits", "--dry_run", f"--sweep_dir={sweep_dir}",
                      "--set", "train.num_stepz=20"]) == 2  # validated like any override


def test_missing_trainer_is_a_failed_run_not_a_crash(tmp_path):
  sweep_dir = str(tmp_path / "s")
  assert launch.main([FIG6A, "--preset=digits", "--seeds=1", f"--sweep_dir={sweep_dir}",
                      f"--trainer={tmp_path}/no_such_trainer"]) == 1
  with open(os.path.join(sweep_dir, "v2_w0.35_r32_linear_bottleneck_s0", "launch.log")) as f:
    assert "could not start" in f.read()
