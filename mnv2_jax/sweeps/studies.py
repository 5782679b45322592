"""Loading ``experiments/<study>.py`` files and expanding them for a preset.

An experiment file is plain Python, loaded by path (``experiments/`` is not a package), and
exposes:

- a module docstring: the question asked, the number of runs, the expected compute;
- ``PRESETS``: ``{name: mnv2_jax.sweeps.presets.Preset}`` it supports;
- ``get_sweep(preset: str, seeds: int | None = None) -> (base_config, runs)`` where
  ``base_config`` is ``"configs/x.py[:arg]"`` and ``runs`` a list of override dicts (dotted
  keys without ``config.``) built with ``mnv2_jax.sweeps.combinators``. Seeds are a sweep axis.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

from mnv2_jax.sweeps import combinators as C


@dataclasses.dataclass(frozen=True)
class Study:
  """One expanded study: its name (the file stem), preset and run overrides."""
  name: str
  path: str
  preset: str
  base_config: str
  runs: tuple[dict[str, Any], ...]
  module: ModuleType = dataclasses.field(repr=False, compare=False)


def load_module(path: str) -> ModuleType:
  """Imports an experiment file by path (a fresh module each call)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no experiment file {path!r}")
  stem = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(f"mnv2_experiments.{stem}", path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # dataclasses and pickling look modules up here.
  spec.loader.exec_module(module)
  for attr in ("PRESETS", "get_sweep"):
    if not hasattr(module, attr):
      raise AttributeError(f"{path} does not define {attr}")
  return module


def load(path: str, preset: str, seeds: int | None = None) -> Study:
  """Expands the experiment file at ``path`` for ``preset`` (``NAME[:ARG]``)."""
  module = load_module(path)
  name = preset.partition(":")[0]
  if name not in module.PRESETS:
    raise ValueError(f"{path} has no preset {name!r}; it supports {sorted(module.PRESETS)}")
  base_config, runs = module.get_sweep(preset, seeds=seeds)
  runs = tuple({C.normalize_key(k): v for k, v in r.items()} for r in runs)
  if not runs:
    raise ValueError(f"{path} preset {preset!r} expands to no runs")
  stem = os.path.splitext(os.path.basename(path))[0]
  return Study(getattr(module, "NAME", stem), path, preset, base_config, runs, module)
