"""Deterministic run names and W&B tags, derived from a run's resolved config.

A name reads like ``v2_w0.35_r32_linear_bottleneck_s0`` (MobileNetV2, width 0.35, resolution 32,
linear bottleneck, shortcut between bottlenecks, seed 0) or ``v1_w0.5_r128_s1``. It is computed
from the *resolved* config, not from the overrides, so a run whose width comes from the base
config's ``:arg`` and one that overrides it get the same name, and the launcher and the W&B
agent shim (``mnv2_jax.sweeps.agent``) always agree on a run's workdir.

Fields that are not part of the canonical name but vary across a sweep (say
``optim.base_lr``) are appended through ``name_keys`` (``..._base_lr0.1_s0``); the launcher
computes them with ``varying_keys``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mnv2_jax import ablations
from mnv2_jax import spec as spec_lib
from mnv2_jax.sweeps import resolve

MAX_TAG_LENGTH = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")


def named_keys() -> frozenset[str]:
  """Config paths the canonical name encodes (never repeated via name_keys): the model, its
  width, the resolution, every declared ablation axis and the seed."""
  return frozenset({"model.name", "model.width_multiplier", "input.resolution",
                    ablations.SEED, *(a.path for a in ablations.axes())})


def _num(value: Any) -> str:
  """0.35 -> "0.35", 1.0 -> "1.0", 224 -> "224" (floats keep one decimal, ints none)."""
  if isinstance(value, bool):
    return str(value).lower()
  if isinstance(value, float):
    return repr(value)
  return str(value)


def _safe(text: str) -> str:
  return _UNSAFE.sub("-", text).strip("-")


def _value_text(value: Any) -> str:
  if isinstance(value, (tuple, list)):
    return "-".join(_value_text(v) for v in value)
  return _safe(_num(value))


def run_name(config: Any, name_keys: Sequence[str] = ()) -> str:
  """The run name of a resolved config (ConfigDict or nested dict)."""
  model = config["model"]
  short = spec_lib.SHORT_NAMES.get(model["name"], _safe(str(model["name"])))
  parts = [short, f"w{_num(float(model['width_multiplier']))}",
           f"r{int(config['input']['resolution'])}"]
  values = ablations.values_of(model["name"], model)
  parts += [_safe(a.token(values[a.field])) for a in ablations.axes(model["name"])
            if a.shown(values[a.field])]
  for key in name_keys:
    try:
      value = resolve.get_path(config, key)
    except (KeyError, AttributeError):
      continue  # Not a field of this config (such a run fails validation anyway).
    parts.append(f"{key.rsplit('.', 1)[-1]}{_value_text(value)}")
  parts.append(f"s{config['seed']}")
  return "_".join(parts)


def varying_keys(runs: Iterable[Mapping[str, Any]]) -> list[str]:
  """Override keys, other than the named and bookkeeping ones (`ablations.BOOKKEEPING`), that
  are not set to one value in every run."""
  named = named_keys()
  return [k for k in ablations.varying(runs)
          if k not in named and not ablations.is_bookkeeping(k)]


def variant_tags(config: Any) -> list[str]:
  """Searchable W&B tags for a run: model, width, resolution and every axis ("shortcut=none")."""
  model = config["model"]
  tags = [str(model["name"]), f"width={_num(float(model['width_multiplier']))}",
          f"res={int(config['input']['resolution'])}"]
  values = ablations.values_of(model["name"], model)
  tags += [f"{a.field}={a.normalize(values[a.field])}" for a in ablations.axes(model["name"])]
  return tags


def merge_tags(*groups: Iterable[Any]) -> tuple[str, ...]:
  """Tags in order, deduplicated, each cut to W&B's 64-character limit."""
  out: list[str] = []
  for group in groups:
    for tag in group or ():
      tag = str(tag)[:MAX_TAG_LENGTH]
      if tag and tag not in out:
        out.append(tag)
  return tuple(out)
