"""Ablation axes, declared once, and which config keys make one experiment differ from another.

An **axis** is one switch of the block design that studies vary: the paper's two (Fig. 6a's
bottleneck non-linearity, Fig. 6b's shortcut placement) and the ones added since (expansion
factor, depthwise kernel size). Each is declared here, next to the architecture (pure Python, no
JAX), with its config path, allowed values, baseline, short label, plot text and whether it
changes compute. Everything downstream is derived from these declarations:

- `spec.mobilenet_v2_spec` takes each axis as a keyword (defaults: the baselines) and checks it;
  the Flax model declares each as a field with the baseline as its default, and the configs
  take their model defaults from the model's fields;
- run names and W&B tags (`sweeps.naming`), CLI flags of `mnv2-complexity`;
- results grouping and paired deltas (`results.grouping`, `results.tables`) and figure labels
  and panels (`plots`).

Adding an axis means adding its `Axis` below and the code that computes it (its keyword in the
spec function, its field in the model). Everything else picks it up.

**Experiment keys** are every config path except the bookkeeping ones in `BOOKKEEPING`: runs
that differ in any experiment key other than `SEED` are different experiments, and results never
average them together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

SEED = "seed"
# Config paths (a trailing "." matches a whole section) that never distinguish experiments.
BOOKKEEPING: tuple[str, ...] = (
    "wandb.",                       # W&B project, group, name, tags, mode, ...
    "compile_cache_dir",            # paths: where things are kept, not what is computed
    "input.data_dir", "input.manual_dir",
    "train.log_every_steps",        # logging, eval and checkpoint frequencies
    "train.eval_every_steps", "train.eval_every_epochs",
    "train.checkpoint_every_steps", "train.keep_checkpoints",
    "model.impl.",                  # how ops are computed, not what (same function, ops.impl)
    "input.num_parallel_calls", "input.prefetch", "input.cache",  # input speed knobs only
    "input.eval_batch_size",        # exact evaluation: every example counted once whatever it is
)
# The operating point of a run (Fig. 5's x position, with the compute-changing axes).
POINT_KEYS = ("model.name", "input.dataset", "model.width_multiplier", "input.resolution")


def is_bookkeeping(path: str) -> bool:
  return any(path.startswith(p) if p.endswith(".") else path == p for p in BOOKKEEPING)


@dataclasses.dataclass(frozen=True)
class Axis:
  """One ablation axis of the block design.

  Attributes:
    path: config path, "model.<field>"; `field` is the spec keyword and model field.
    baseline: the paper's choice; also the default of the spec, the model and the configs.
    values: allowed values, or None for a number >= `minimum`.
    label: short prefix in run names and variant labels ("t" -> "t4"); "" = the value alone.
    title: what the axis is, for figure panels and legends.
    changes_compute: whether MAdds/params depend on it (then it moves a run along Fig. 5's x
      axis, and paired deltas at equal compute never contrast it).
    models: the architectures that have it.
    value_labels: legend text per value (default "<label><value>" or the value).
    always_named: shown in names and variants even at its baseline (the paper's two switches,
      so that names read "linear_bottleneck"); otherwise only off-baseline values are.
    minimum: for numeric axes without `values`.
  """
  path: str
  baseline: Any
  values: tuple[Any, ...] | None
  label: str
  title: str
  changes_compute: bool
  models: tuple[str, ...] = ("mobilenet_v2",)
  value_labels: tuple[tuple[Any, str], ...] = ()
  always_named: bool = False
  minimum: float | None = None

  @property
  def field(self) -> str:
    return self.path.rsplit(".", 1)[-1]

  @property
  def type(self) -> type:
    return type(self.baseline)

  def check(self, value: Any) -> Any:
    """`value` if allowed; else a ValueError naming the field and the allowed values."""
    if self.values is not None:
      if value not in self.values or isinstance(value, bool) != isinstance(self.baseline, bool):
        raise ValueError(f"{self.path} must be one of {self.values}, got {value!r}")
      return value
    if (isinstance(value, bool) or not isinstance(value, (int, float))
        or (self.minimum is not None and not value >= self.minimum)):
      raise ValueError(f"{self.path} must be a number >= {self.minimum}, got {value!r}")
    return value

  def normalize(self, value: Any) -> Any:
    """A value read back from JSON or a table (5 / 5.0 / "5") in the baseline's type.

    Anything that is not such a number (3.5 for an integer axis, "abc", True) is returned
    unchanged, so that `check` rejects it instead of it being rounded to an allowed value.
    """
    if isinstance(self.baseline, bool) or not isinstance(self.baseline, (int, float)):
      return value
    if isinstance(value, bool):
      return value
    try:
      number = float(value)
    except (TypeError, ValueError):
      return value
    if isinstance(self.baseline, int):
      return int(number) if number.is_integer() else value
    return number

  def is_baseline(self, value: Any) -> bool:
    return self.normalize(value) == self.baseline

  def token(self, value: Any) -> str:
    """The value as it appears in names and variant labels: "linear", "t4", "k5"."""
    value = self.normalize(value)
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{self.label}{text}"

  def value_label(self, value: Any) -> str:
    labels = dict(self.value_labels)
    value = self.normalize(value)
    if value in labels:
      return labels[value]
    return f"{self.title} {value:g}" if isinstance(value, float) else f"{self.title} {value}"

  def shown(self, value: Any) -> bool:
    """Whether names and variant labels carry this value."""
    return self.always_named or not self.is_baseline(value)


_REGISTRY: dict[str, Axis] = {}


def register(axis: Axis) -> Axis:
  """Declares an axis (its path must be new); returns it."""
  if axis.path in _REGISTRY:
    raise ValueError(f"axis {axis.path!r} is already declared")
  if not axis.path.startswith("model.") or not axis.field.isidentifier():
    raise ValueError(f"an axis path is model.<field>, got {axis.path!r}")
  if axis.values is not None and axis.baseline not in axis.values:
    raise ValueError(f"{axis.path}: baseline {axis.baseline!r} is not among {axis.values}")
  _REGISTRY[axis.path] = axis
  return axis


def unregister(path: str) -> None:
  """Removes a declared axis (for throwaway axes in tests)."""
  _REGISTRY.pop(path)


def axes(model: str | None = None) -> tuple[Axis, ...]:
  """Declared axes in declaration order (those of `model` if given)."""
  return tuple(a for a in _REGISTRY.values() if model is None or model in a.models)


def get(path: str) -> Axis:
  if path not in _REGISTRY:
    raise KeyError(f"no axis {path!r}; declared: {sorted(_REGISTRY)}")
  return _REGISTRY[path]


def baseline(path: str) -> Any:
  return get(path).baseline


def baselines(model: str) -> dict[str, Any]:
  """{field: baseline} of the axes of `model` (the spec/model keyword defaults)."""
  return {a.field: a.baseline for a in axes(model)}


def values_of(model: str, fields: Mapping[str, Any]) -> dict[str, Any]:
  """{field: value} of `model`'s axes read from a model config or summary (baseline if absent)."""
  out = {}
  for a in axes(model):
    value = fields.get(a.field)
    out[a.field] = a.baseline if value is None else a.normalize(value)
  return out


def variant(model: str, values: Mapping[str, Any], short: str, *,
            compute_changing: bool = True) -> str:
  """The design label of a run: "linear/bottleneck", "linear/bottleneck/t4", "v1".

  `short` is the model's short name, used when no axis of the model is shown. Without
  `compute_changing`, only the compute-neutral axes (a Fig. 5 frontier's series).
  """
  parts = [a.token(values[a.field]) for a in axes(model)
           if a.shown(values[a.field]) and (compute_changing or not a.changes_compute)]
  return "/".join(parts) if parts else short


def describe(model: str, values: Mapping[str, Any], model_title: str, *,
             compute_changing: bool = True) -> str:
  """Legend text of a design: the off-baseline values' labels ("ReLU6 in bottleneck"), or the
  baseline's labels of the always-named axes ("Linear bottleneck, Shortcut between ...")."""
  chosen = [a for a in axes(model) if compute_changing or not a.changes_compute]
  off = [a.value_label(values[a.field]) for a in chosen if not a.is_baseline(values[a.field])]
  if off:
    return ", ".join(off)
  named = [a.value_label(values[a.field]) for a in chosen if a.always_named]
  return ", ".join(named) if named else model_title


def compute_neutral(model: str) -> tuple[Axis, ...]:
  return tuple(a for a in axes(model) if not a.changes_compute)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """{"model.shortcut": "none", ...} of a nested mapping (tuples/lists kept as tuples)."""
  out: dict[str, Any] = {}
  for key, value in config.items():
    path = f"{prefix}{key}"
    if isinstance(value, Mapping):
      out.update(flatten(value, path + "."))
    else:
      out[path] = tuple(value) if isinstance(value, list) else value
  return out


def experiment_keys(flat: Mapping[str, Any]) -> dict[str, Any]:
  """The experiment keys (not bookkeeping) of a flattened config."""
  return {k: v for k, v in flat.items() if not is_bookkeeping(k)}


def varying(settings: Iterable[Mapping[str, Any]]) -> list[str]:
  """Keys whose value is not the same in every mapping (a key missing somewhere varies)."""
  settings = list(settings)
  keys = sorted({k for s in settings for k in s})
  return [k for k in keys
          if len({repr(s.get(k, "<unset>")) for s in settings}) > 1
          or any(k not in s for s in settings)]


register(Axis(
    "model.bottleneck_activation", "linear", ("linear", "relu6"), "",
    "Non-linearity in the bottleneck", changes_compute=False, always_named=True,
    value_labels=(("linear", "Linear bottleneck"), ("relu6", "ReLU6 in bottleneck"))))
register(Axis(
    "model.shortcut", "bottleneck", ("bottleneck", "expansion", "none"), "",
    "Residual placement", changes_compute=False, always_named=True,
    value_labels=(("bottleneck", "Shortcut between bottlenecks"),
                  ("expansion", "Shortcut between expansions"), ("none", "No residual"))))
register(Axis(
    "model.expansion_factor", 6.0, None, "t", "Expansion factor t", changes_compute=True,
    minimum=1))
register(Axis(
    "model.depthwise_kernel", 3, (3, 5), "k", "Depthwise kernel", changes_compute=True,
    value_labels=((3, "3x3 depthwise"), (5, "5x5 depthwise"))))
