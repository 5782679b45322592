"""W&B sweep YAML export, and its inverse (what a W&B grid sweep would run).

Design (one YAML per study, ``method: grid``):

* W&B's ``grid`` enumerates the cartesian product of its ``parameters``. When a study's run
  list IS a product (Fig. 6a, Fig. 6b, variant_pareto before its zipped 1.4 point...), every
  swept key becomes a parameter named with its flag path, ``config.model.shortcut: {values:
  [...]}`` (constant keys: ``{value: ...}``), so the W&B UI shows real config columns, and
  ``${args}`` expands to ``--config.model.shortcut=none``, which ``config_flags`` parses.
* When it is not a product (``zipit``/``chain``: Fig. 5's 21-point grid + V1 grid), a product
  over per-key values would launch runs that were never asked for. Then the YAML has ONE
  categorical parameter, ``run_overrides``, whose values are the runs' override dicts as JSON
  strings; grid over it runs exactly the listed runs. (Rejected alternative: one YAML per product
  block; it multiplies sweeps in the UI and still needs a decomposition the combinators do not
  keep.)
* Either way the command runs ``python -m mnv2_jax.sweeps.agent`` (not the trainer directly),
  because every run needs its own ``--workdir`` and W&B has no per-run macro for one: the shim
  resolves the config, derives the same deterministic run name as ``mnv2-sweep``, uses
  ``<sweep_dir>/<run name>`` as the workdir, sets ``wandb.group/name/tags``, skips runs whose
  ``summary.json`` says finished, and execs the trainer with ``--config=... ${args}``.

``expand`` reads a YAML back into ``(base_config, [override dicts])``; tests check it gives
exactly the runs that were exported. W&B sweeps cannot be created offline (wandb/wandb#7642):
``wandb sweep <file>`` then ``wandb agent <id>`` need a server; nothing here contacts one.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from mnv2_jax.sweeps import combinators as C

RUN_OVERRIDES = "run_overrides"
AGENT_MODULE = "mnv2_jax.sweeps.agent"


def _plain(value: Any) -> Any:
  """YAML/JSON-safe value: tuples become lists."""
  return list(value) if isinstance(value, tuple) else value


def _typed(value: Any) -> Any:
  """Inverse of ``_plain``: lists (W&B/YAML) become tuples (ml_collections tuple fields)."""
  return tuple(value) if isinstance(value, list) else value


def product_axes(runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Any]]] | None:
  """``[(key, values), ...]`` if ``runs`` is exactly their cartesian product, else None."""
  if not runs:
    return None
  keys = list(runs[0])
  if any(set(r) != set(keys) for r in runs):
    return None
  axes = []
  for key in keys:
    seen: dict[str, Any] = {}
    for r in runs:
      seen.setdefault(repr(r[key]), r[key])
    axes.append((key, list(seen.values())))
  if math.prod(len(v) for _, v in axes) != len(runs):
    return None
  grid = {C.canonical(dict(zip(keys, combo)))
          for combo in itertools.product(*(v for _, v in axes))}
  return axes if grid == {C.canonical(r) for r in runs} else None


def to_doc(*, study: str, base_config: str, runs: Sequence[Mapping[str, Any]],
           sweep_dir: str, group: str, tags: Sequence[str] = (),
           name_keys: Sequence[str] = (), project: str | None = "mnv2_jax") -> dict[str, Any]:
  """The W&B sweep config (a dict ready for ``yaml.safe_dump``) of one study's runs."""
  axes = product_axes(runs)
  if axes is not None:
    parameters = {
        f"config.{key}": ({"value": _plain(values[0])} if len(values) == 1
                          else {"values": [_plain(v) for v in values]})
        for key, values in axes}
  else:
    parameters = {RUN_OVERRIDES: {"values": [
        json.dumps({k: _plain(v) for k, v in r.items()}, sort_keys=True) for r in runs]}}
  how = "grid over config.* parameters" if axes else f"listed runs via {RUN_OVERRIDES}"
  command = ["${env}", "${interpreter}", "-m", AGENT_MODULE, f"--sweep_dir={sweep_dir}",
             f"--group={group}"]
  if tags:
    command.append(f"--tags={','.join(tags)}")
  if name_keys:
    command.append(f"--name_keys={','.join(name_keys)}")
  command += [f"--config={base_config}", "${args}"]
  doc = {
      "name": f"{group}/{study}",
      "description": f"{study}: {len(runs)} runs ({how})",
      "program": AGENT_MODULE.replace(".", "/") + ".py",
      "method": "grid",
      "metric": {"name": "eval/top1", "goal": "maximize"},
      "parameters": parameters,
      "command": command,
  }
  if project:
    doc["project"] = project
  return doc


def dump(doc: Mapping[str, Any]) -> str:
  return yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False, width=100)


def base_config_of(doc: Mapping[str, Any]) -> str:
  for arg in doc["command"]:
    if isinstance(arg, str) and arg.startswith("--config="):
      return arg[len("--config="):]
  raise ValueError("sweep command has no --config=")


def points(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
  """The parameter assignments W&B's grid would produce (YAML key order; first slowest)."""
  params = doc["parameters"]
  names = list(params)
  choices = []
  for name in names:
    spec = params[name]
    if "values" in spec:
      choices.append(list(spec["values"]))
    elif "value" in spec:
      choices.append([spec["value"]])
    else:
      raise ValueError(f"grid parameter {name!r} needs 'value' or 'values', got {spec}")
  return [dict(zip(names, combo)) for combo in itertools.product(*choices)]


def point_overrides(point: Mapping[str, Any]) -> dict[str, Any]:
  """One grid point -> override dict (``config.`` stripped, JSON ``run_overrides`` decoded)."""
  out: dict[str, Any] = {}
  for name, value in point.items():
    if name == RUN_OVERRIDES:
      decoded = json.loads(value) if isinstance(value, str) else value
      out.update({C.normalize_key(k): _typed(v) for k, v in decoded.items()})
    elif name.startswith(C.PREFIX):
      out[C.normalize_key(name)] = _typed(value)
    else:
      raise ValueError(f"unexpected sweep parameter {name!r} (expected config.* or "
                       f"{RUN_OVERRIDES})")
  return out


def expand(doc: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
  """``(base_config, runs)`` that the sweep ``doc`` would launch."""
  return base_config_of(doc), [point_overrides(p) for p in points(doc)]


def wandb_args(point: Mapping[str, Any]) -> list[str]:
  """What ``${args}`` expands to for one point: ``--name=value`` with W&B's str() of values."""
  return [f"--{k}={json.dumps(v) if isinstance(v, (dict, list)) else v}"
          for k, v in point.items()]
