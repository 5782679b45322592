"""From studies to a validated, deduplicated, named list of runs, and their commands.

``build_plan`` resolves every run's config through ``config_flags`` and constructs its model
(``mnv2_jax.sweeps.resolve``), so a typo in any override fails here, with every error listed,
before a single run starts. Identical runs requested by several studies (Fig. 6a and 6b share
their baseline) are merged by resolved config: one workdir, tagged with both studies.

Each run's W&B metadata is set through overrides: ``wandb.group`` = the sweep's group,
``wandb.name`` = the run name, ``wandb.tags`` = the base config's tags + study names + preset +
variant tags (model, width, resolution, switches).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from mnv2_jax import ablations
from mnv2_jax.sweeps import naming
from mnv2_jax.sweeps import resolve
from mnv2_jax.sweeps import studies as studies_lib

TRAINER = ("python", "-m", "mnv2_jax.main")
MANIFEST = "sweep.json"


class PlanError(ValueError):
  """One or more runs of a sweep are invalid (the message lists them all)."""


@dataclasses.dataclass
class Run:
  """One training run of a sweep."""
  name: str
  base_config: str
  overrides: dict[str, Any]          # the study's overrides (without W&B bookkeeping)
  studies: list[str]
  tags: tuple[str, ...]
  config: Any = dataclasses.field(repr=False, default=None)  # resolved ConfigDict

  def launch_overrides(self, group: str) -> dict[str, Any]:
    return {**self.overrides, "wandb.group": group, "wandb.name": self.name,
            "wandb.tags": self.tags}

  def argv(self, workdir: str, group: str, trainer: Sequence[str] = TRAINER) -> list[str]:
    """The trainer command line for this run."""
    return [*trainer, f"--config={self.base_config}", f"--workdir={workdir}",
            *resolve.override_flags(self.launch_overrides(group))]


@dataclasses.dataclass
class Plan:
  group: str
  preset: str
  runs: list[Run]
  studies: list[studies_lib.Study]
  name_keys: list[str]

  def run_dir(self, sweep_dir: str, run: Run) -> str:
    return os.path.join(sweep_dir, run.name)

  def launch_order(self) -> list[Run]:
    """The runs in the order local launches start them: seed-major, else as planned.

    Every configuration's first seed starts before any configuration's second one. Seeds of one
    configuration compile the same programs (the init takes the seed as an argument), so a
    later seed loads them from the persistent compile cache that its first seed wrote, instead
    of two processes compiling them side by side (~20 s of CPU per digits run).
    """
    return sorted(self.runs, key=lambda r: r.config[ablations.SEED])

  def commands(self, sweep_dir: str, trainer: Sequence[str] = TRAINER) -> list[str]:
    """One shell command per run (for any cluster scheduler)."""
    return [shlex.join(r.argv(self.run_dir(sweep_dir, r), self.group, trainer))
            for r in self.runs]

  def to_manifest(self, sweep_dir: str) -> dict[str, Any]:
    """What ``sweep.json`` records: enough for results/plots to know each run's studies."""
    return {
        "group": self.group, "preset": self.preset, "name_keys": self.name_keys,
        "studies": [{"name": s.name, "path": s.path, "base_config": s.base_config,
                     "runs": len(s.runs)} for s in self.studies],
        "runs": [{"name": r.name, "base_config": r.base_config, "overrides": r.overrides,
                  "studies": r.studies, "tags": list(r.tags),
                  "workdir": self.run_dir(sweep_dir, r)} for r in self.runs],
    }


def _content_key(base_config: str, config: Any) -> str:
  """Identity of a run: its resolved config without the W&B section (+ the config file)."""
  d = config.to_dict()
  d.pop("wandb", None)
  return resolve.config_path(base_config) + json.dumps(d, sort_keys=True, default=str)


def build_plan(studies: Sequence[studies_lib.Study], group: str) -> Plan:
  """Validates, names and deduplicates the runs of ``studies``; raises PlanError."""
  if not studies:
    raise PlanError("no studies given")
  presets = sorted({s.preset for s in studies})
  errors: list[str] = []
  name_keys = naming.varying_keys(r for s in studies for r in s.runs)
  by_key: dict[str, Run] = {}
  by_name: dict[str, str] = {}
  tag_parts: dict[str, tuple[tuple[str, ...], str]] = {}
  for study in studies:
    base_tags: tuple[str, ...] | None = None
    for i, overrides in enumerate(study.runs):
      try:
        config = resolve.resolve(study.base_config, overrides)
      except resolve.InvalidRunError as e:
        errors.append(f"{study.name} run {i} {overrides}: {e}")
        continue
      if base_tags is None:
        base_tags = tuple(config.wandb.tags or ())
      name = naming.run_name(config, name_keys)
      key = _content_key(study.base_config, config)
      if key in by_key:
        run = by_key[key]
        if study.name not in run.studies:
          run.studies.append(study.name)
        continue
      if name in by_name:
        errors.append(f"{study.name} run {i}: name {name!r} is already used by a different "
                      "config (add the differing key to the name via the sweep)")
        continue
      run = Run(name, study.base_config, dict(overrides), [study.name], (), config)
      tag_parts[name] = (base_tags, study.preset.partition(":")[0])
      by_key[key], by_name[name] = run, key
  runs = list(by_key.values())
  checked: set[str] = set()
  for run in runs:  # Tags now include every study.
    base_tags, preset = tag_parts[run.name]
    run.tags = naming.merge_tags(base_tags, run.studies, [preset],
                                 naming.variant_tags(run.config))
    if errors or run.base_config in checked:
      continue
    checked.add(run.base_config)  # The W&B overrides have the same types in every run.
    try:
      resolve.load_config(run.base_config, resolve.override_flags(run.launch_overrides(group)))
    except resolve.InvalidRunError as e:
      errors.append(f"{run.name}: {e}")
  if errors:
    raise PlanError(f"{len(errors)} invalid run(s); nothing was launched:\n  " +
                    "\n  ".join(errors))
  return Plan(group, ",".join(presets), runs, list(studies), name_keys)


def default_trainer() -> list[str]:
  """This interpreter running the trainer module (what local launches use)."""
  return [sys.executable, "-m", "mnv2_jax.main"]
