"""``mnv2-sweep`` prepares every dataset its runs read once, before it launches any run."""

from __future__ import annotations

import json
import os
import sys

from mnv2_jax.sweeps import launch

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = f"{sys.executable} {os.path.join(HERE, 'prepared_check_trainer.py')}"
FIG6A = "experiments/fig6a_nonlinearity.py"


def _seen(sweep_dir):
  path = os.path.join(sweep_dir, "data_seen.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f]


def test_datasets_are_prepared_before_the_first_run_starts(tmp_path):
  sweep_dir, data_dir = str(tmp_path / "s"), str(tmp_path / "tfds")
  assert launch.main([FIG6A, "--preset=digits", "--seeds=2", f"--sweep_dir={sweep_dir}",
                      f"--trainer={CHECKER}", "--parallel=2",
                      "--set", f"input.data_dir={data_dir}"]) == 0
  seen = _seen(sweep_dir)
  assert len(seen) == 4
  # Every run, the first two included (started together), found the dataset complete, and
  # nothing else in the data_dir (no staging dir: the launcher had finished preparing).
  assert all(s["prepared"] and s["entries"] == ["sklearn_digits"] for s in seen), seen


def test_dry_run_and_emit_do_not_prepare(tmp_path):
  data_dir = str(tmp_path / "tfds")
  for mode in ("--dry_run", "--emit=commands", "--emit=wandb_yaml"):
    assert launch.main([FIG6A, "--preset=digits", f"--sweep_dir={tmp_path / 's'}", mode,
                        "--set", f"input.data_dir={data_dir}"]) == 0
  assert not os.path.exists(data_dir)


def test_unpreparable_dataset_fails_before_any_run(tmp_path, capsys):
  sweep_dir, data_dir = str(tmp_path / "s"), str(tmp_path / "tfds")
  assert launch.main([FIG6A, "--preset=digits", "--seeds=1", f"--sweep_dir={sweep_dir}",
                      f"--trainer={CHECKER}", "--set", "input.dataset=cifar10",
                      "--set", f"input.data_dir={data_dir}"]) == 2
  err = capsys.readouterr().err
  assert "never downloads 'cifar10'" in err and "tfds build cifar10" in err
  assert "no run was launched" in err
  assert _seen(sweep_dir) == [] and not os.path.exists(os.path.join(sweep_dir, "sweep.json"))
