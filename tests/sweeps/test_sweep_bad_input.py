"""``mnv2-sweep`` rejects bad presets, flags, ``--set`` values and experiment files before it
creates its sweep dir: exit status 2 and a message naming the field and the allowed values.

Each case is ``launch.main`` in process with ``--emit=commands`` (which would write the sweep
dir and return 0 for an accepted sweep) or, for ``--parallel``, a launch whose trainer is a
command that fails at once. Durations (warm-up longer than a run) need the dataset's size and
are the trainer's to check at start-up (tests/test_validate.py).
"""

from __future__ import annotations

import os
import sys

import pytest

from mnv2_jax.sweeps import launch

FIG6B = "experiments/fig6b_shortcut.py"
FAILING_TRAINER = f"{sys.executable} -c 'raise SystemExit(3)'"

GOOD_HEADER = ("from mnv2_jax.sweeps import combinators as C\n"
               "from mnv2_jax.sweeps import presets\n"
               "PRESETS = presets.select('digits')\n")
FILES = {
    "no_get_sweep.py": GOOD_HEADER,
    "syntax_error.py": GOOD_HEADER + "def get_sweep(preset, seeds=None)\n  return 1\n",
    "unknown_key.py": GOOD_HEADER + (
        "def get_sweep(preset, seeds=None):\n"
        "  return 'configs/digits.py', C.sweep('model.shortcutt', ['none'])\n"),
    "bad_value.py": GOOD_HEADER + (
        "def get_sweep(preset, seeds=None):\n"
        "  return 'configs/digits.py', C.sweep('optim.base_lr', [0.1, float('inf')])\n"),
}

# (case id, argv after the study file(s), texts stderr must contain)
CASES = [
    ("unknown_preset", ["--preset=nosuch"], ["no preset 'nosuch'", "'digits'", "'paper'"]),
    ("bad_preset_arg", ["--preset=digits:widht=0.5"],
     ["unknown config arg 'widht'", "allowed keys: ['width', 'res', 'epochs', 'batch']"]),
    ("preset_arg_resolution", ["--preset=digits:res=16"], ["input.resolution", ">= 32"]),
    ("set_lr_nan", ["--set", "optim.base_lr=nan"], ["optim.base_lr", "(0, inf)", "nan"]),
    ("set_lr_negative", ["--set", "optim.base_lr=-0.1"], ["optim.base_lr", "(0, inf)"]),
    ("set_unknown_key", ["--set", "optim.base_lrr=0.1"], ["base_lrr", 'Did you mean "base_lr"']),
    ("set_wrong_type", ["--set", "optim.base_lr=fast"],
     ["config.optim.base_lr=fast", "could not convert string to float"]),
    ("set_int_as_float", ["--set", "train.num_steps=2.5"],
     ["config.train.num_steps=2.5", "invalid literal for int()"]),
    ("set_shortcut", ["--set", "model.shortcut=between"],
     ["model.shortcut", "'bottleneck', 'expansion', 'none'"]),
    ("set_width_zero", ["--set", "model.width_multiplier=0.0"],
     ["model.width_multiplier", "positive"]),
    ("set_wandb_mode", ["--set", "wandb.mode=cloud"],
     ["wandb.mode", "('auto', 'online', 'offline', 'disabled')"]),
    ("set_label_smoothing", ["--set", "optim.label_smoothing=1.5"],
     ["optim.label_smoothing", "[0, 1)"]),
    ("set_negative_epochs", ["--set", "train.num_epochs=-1.0"], ["train.num_epochs", "> 0"]),
    ("set_without_value", ["--set", "optim.base_lr"], ["--set expects KEY=VALUE"]),
    ("seeds_zero", ["--seeds=0"], ["--seeds must be an integer >= 1", "got 0"]),
    ("only_bad_regex", ["--only=("], ["--only must be a Python regular expression"]),
    ("parallel_zero", ["--parallel=0"], ["--parallel must be an integer >= 1", "got 0"]),
    ("measure_with_emit", ["--measure"], ["--measure runs after the runs finish",
                                          "--emit=commands", "mnv2-measure SWEEP_DIR"]),
    ("missing_file", {"file": "missing.py"}, ["no experiment file", "missing.py"]),
    ("file_without_get_sweep", {"file": "no_get_sweep.py"},
     ["does not define get_sweep", "get_sweep(preset, seeds=None)"]),
    ("file_syntax_error", {"file": "syntax_error.py"},
     ["syntax_error.py cannot be loaded", "SyntaxError"]),
    ("file_unknown_key", {"file": "unknown_key.py"}, ["shortcutt", 'Did you mean "shortcut"']),
    ("file_bad_value", {"file": "bad_value.py"}, ["optim.base_lr", "(0, inf)", "inf"]),
]


@pytest.mark.parametrize("extra, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sweep_rejects_bad_input_before_creating_its_dir(tmp_path, capsys, extra, expected):
  for name, text in FILES.items():
    (tmp_path / name).write_text(text)
  if isinstance(extra, dict):  # a bad experiment file
    study, extra = str(tmp_path / extra["file"]), ["--preset=digits"]
  else:
    study = FIG6B
  if not any(a.startswith("--preset") for a in extra):
    extra = ["--preset=digits", *extra]
  sweep_dir = tmp_path / "sweep"
  mode = ([f"--trainer={FAILING_TRAINER}"] if "--parallel=0" in extra
          else ["--emit=commands"])
  rc = launch.main([study, "--seeds=1", *extra, f"--sweep_dir={sweep_dir}", *mode])
  err = capsys.readouterr().err
  assert rc == 2, err
  for text in expected:
    assert text in err, err
  assert not sweep_dir.exists()
