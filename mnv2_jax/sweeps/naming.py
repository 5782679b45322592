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

from mnv2_jax.sweeps import resolve

# Config paths that the canonical name already encodes (never repeated via name_keys).
NAMED_KEYS = frozenset({
    "model.name", "model.width_multiplier", "input.resolution", "model.bottleneck_activation",
    "model.shortcut", "model.expansion_factor", "seed"})
# Config paths that are bookkeeping, not experiment content (never in names).
META_PREFIXES = ("wandb.",)
DEFAULT_EXPANSION = 6.0
MAX_TAG_LENGTH = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")
MODEL_SHORT = {"mobilenet_v2": "v2", "mobilenet_v1": "v1"}


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
  short = MODEL_SHORT.get(model["name"], _safe(str(model["name"])))
  parts = [short, f"w{_num(float(model['width_multiplier']))}",
           f"r{int(config['input']['resolution'])}"]
  if model["name"] == "mobilenet_v2":
    parts += [str(model["bottleneck_activation"]), str(model["shortcut"])]
    if float(model["expansion_factor"]) != DEFAULT_EXPANSION:
      parts.append(f"t{float(model['expansion_factor']):g}")
  for key in name_keys:
    try:
      value = resolve.get_path(config, key)
    except (KeyError, AttributeError):
      continue  # Not a field of this config (such a run fails validation anyway).
    parts.append(f"{key.rsplit('.', 1)[-1]}{_value_text(value)}")
  parts.append(f"s{config['seed']}")
  return "_".join(parts)


def varying_keys(runs: Iterable[Mapping[str, Any]]) -> list[str]:
  """Override keys outside NAMED_KEYS/META that are not set to one value in every run."""
  runs = list(runs)
  keys = sorted({k for r in runs for k in r})
  out = []
  for key in keys:
    if key in NAMED_KEYS or key.startswith(META_PREFIXES):
      continue
    values = {repr(r.get(key, "<unset>")) for r in runs}
    if len(values) > 1 or any(key not in r for r in runs):
      out.append(key)
  return out


def variant_tags(config: Any) -> list[str]:
  """Searchable W&B tags for a run: model, width, resolution, ablation switches."""
  model = config["model"]
  tags = [str(model["name"]), f"width={_num(float(model['width_multiplier']))}",
          f"res={int(config['input']['resolution'])}"]
  if model["name"] == "mobilenet_v2":
    tags += [f"bottleneck={model['bottleneck_activation']}", f"shortcut={model['shortcut']}"]
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
