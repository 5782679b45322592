"""The command a W&B sweep agent runs: one sweep point -> one trainer run in its own workdir.

    python -m mnv2_jax.sweeps.agent --sweep_dir=DIR --group=G [--tags=a,b] [--name_keys=k,...]
        --config=configs/x.py[:arg] (--config.a.b=v ... | --run_overrides=JSON) [--dry_run]

Why a shim: a W&B sweep has one command for all runs, but every run needs its own
``--workdir`` (checkpoints, metrics, resume). This resolves the config exactly as the trainer
will, names the run like ``mnv2-sweep`` does (``mnv2_jax.sweeps.naming``), skips it if
``DIR/<name>/summary.json`` says finished, and otherwise runs ``python -m mnv2_jax.main`` with
the same overrides plus ``wandb.group/name/tags``; the exit code is the trainer's. Note: the
agent also records the sweep parameters in ``wandb.config`` under flat ``config.*`` keys next
to the trainer's nested config (wandb/wandb#5477).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence

from mnv2_jax.sweeps import naming
from mnv2_jax.sweeps import resolve
from mnv2_jax.sweeps import runner
from mnv2_jax.sweeps import wandb_yaml

OWN_FLAGS = ("sweep_dir", "group", "tags", "name_keys", "config", "run_overrides")


def parse(argv: Sequence[str]) -> tuple[dict[str, str], list[str], bool]:
  """Splits argv into the shim's own flags, ``--config.*`` override flags and --dry_run."""
  own: dict[str, str] = {}
  overrides: list[str] = []
  dry_run = False
  for arg in argv:
    if arg == "--dry_run":
      dry_run = True
    elif arg.startswith("--config."):
      overrides.append(arg)
    elif arg.startswith("--") and "=" in arg and arg[2:].split("=", 1)[0] in OWN_FLAGS:
      key, value = arg[2:].split("=", 1)
      own[key] = value
    else:
      raise ValueError(f"unexpected argument {arg!r}")
  for key in ("sweep_dir", "group", "config"):
    if key not in own:
      raise ValueError(f"--{key} is required")
  if "run_overrides" in own:
    decoded = json.loads(own["run_overrides"])
    overrides += resolve.override_flags(wandb_yaml.point_overrides({"run_overrides": decoded}))
  return own, overrides, dry_run


def trainer_command(argv: Sequence[str]) -> tuple[str, list[str] | None]:
  """(workdir, trainer argv) for one sweep point; argv None if the run already finished."""
  own, overrides, _ = parse(argv)
  config = resolve.load_config(own["config"], overrides)
  resolve.build_model(config)
  name_keys = [k for k in own.get("name_keys", "").split(",") if k]
  name = naming.run_name(config, name_keys)
  workdir = os.path.join(own["sweep_dir"], name)
  if runner.run_status(workdir) == runner.FINISHED:
    return workdir, None
  tags = naming.merge_tags(config.wandb.tags or (), own.get("tags", "").split(","),
                           naming.variant_tags(config))
  meta = resolve.override_flags({"wandb.group": own["group"], "wandb.name": name,
                                 "wandb.tags": tags})
  return workdir, [sys.executable, "-m", "mnv2_jax.main", f"--config={own['config']}",
                   f"--workdir={workdir}", *overrides, *meta]


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  _, _, dry_run = parse(argv)
  workdir, command = trainer_command([a for a in argv if a != "--dry_run"])
  if command is None:
    print(f"{workdir}: already finished; skipping")
    return 0
  if dry_run:
    print(" ".join(command))
    return 0
  os.makedirs(workdir, exist_ok=True)
  return subprocess.call(command)


if __name__ == "__main__":
  sys.exit(main())
