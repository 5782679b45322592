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
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # a broken file: syntax error, failing import, ...
    sys.modules.pop(spec.name, None)
    raise ValueError(f"experiment file {path} cannot be loaded: {type(e).__name__}: {e}") from e
  for attr in ("PRESETS", "get_sweep"):
    if not hasattr(module, attr):
      raise AttributeError(f"{path} does not define {attr}; an experiment file defines "
                           "PRESETS (a dict of presets) and get_sweep(preset, seeds=None)")
  if not isinstance(module.PRESETS, dict) or not callable(module.get_sweep):
    raise ValueError(f"{path}: PRESETS must be a dict of presets and get_sweep a function")
  return module


def load(path: str, preset: str, seeds: int | None = None) -> Study:
  """Expands the experiment file at ``path`` for ``preset`` (``NAME[:ARG]``)."""
  module = load_module(path)
  name = preset.partition(":")[0]
  if name not in module.PRESETS:
    raise ValueError(f"{path} has no preset {name!r}; it supports {sorted(module.PRESETS)}")
  try:
    base_config, runs = module.get_sweep(preset, seeds=seeds)
  except (TypeError, ValueError, KeyError) as e:  # e.g. a preset ARG the file rejects
    raise ValueError(f"{path} get_sweep({preset!r}, seeds={seeds}): {e}") from e
  if not isinstance(base_config, str) or not all(isinstance(r, dict) for r in runs):
    raise ValueError(f"{path} get_sweep must return (base_config: str, runs: list of dicts), "
                     f"got ({base_config!r}, {type(runs).__name__})")
  runs = tuple({C.normalize_key(k): v for k, v in r.items()} for r in runs)
  if not runs:
    raise ValueError(f"{path} preset {preset!r} expands to no runs")
  stem = os.path.splitext(os.path.basename(path))[0]
  return Study(getattr(module, "NAME", stem), path, preset, base_config, runs, module)
