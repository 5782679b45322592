"""Which runs are repeats of one experiment, and which experiment each is compared against.

A **group** is the finished runs that agree in every experiment key but the seed
(`mnv2_jax.ablations`): the operating point (model, dataset, width, resolution), every ablation
axis, and every other non-bookkeeping config key (`RunRecord.settings`: learning rate, epochs,
augmentation, ...). Results average seeds within a group and nothing else, so two runs that
differ only in `optim.base_lr` are never averaged as if they were repeated seeds.

A group's **label** is its design variant (`RunRecord.variant`) plus the settings that vary
among the runs being reported ("linear/bottleneck base_lr=0.1"). Its **baseline** for paired
deltas is the group equal to it in everything except the compute-neutral axes, which are at
their baselines: a comparison at equal compute (axes that change compute move the operating
point instead, and are compared on the accuracy-vs-MAdds plots).

Values are the runs' primary metric (`collect.RunRecord.metric`: top-1, mAP or mIoU) in
percent; the `metric` argument below ("final" | "best") picks its final or best value. Groups
are formed within one metric only: `groups` rejects records that mix metrics (`collect.metric_of`).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging as absl_logging

from mnv2_jax import ablations
from mnv2_jax import run_record
from mnv2_jax import spec as spec_lib
from mnv2_jax.results import collect


def _items(mapping: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
  return tuple(sorted(mapping.items()))


def experiment_key(r: collect.RunRecord) -> tuple:
  """Everything that identifies a run's experiment, except its seed (hashable)."""
  return (r.point, _items(r.axes), _items(r.settings))


@dataclasses.dataclass(frozen=True)
class Group:
  """Finished runs of one experiment (repeats over seeds), in seed order."""
  key: tuple
  runs: tuple[collect.RunRecord, ...]

  @property
  def first(self) -> collect.RunRecord:
    return self.runs[0]

  @property
  def axes(self) -> dict[str, Any]:
    return dict(self.first.axes)

  @property
  def variant(self) -> str:
    return self.first.variant

  def settings_text(self, varying: Sequence[str] = ()) -> str:
    """The given settings of this group: "base_lr=0.1 num_epochs=12.0"."""
    return " ".join(f"{k.rsplit('.', 1)[-1]}={self.first.settings.get(k, '<unset>')}"
                    for k in varying)

  def label(self, varying: Sequence[str] = ()) -> str:
    """The variant plus the given settings ("linear/bottleneck base_lr=0.1")."""
    return " ".join(x for x in (self.variant, self.settings_text(varying)) if x)

  def series(self, varying: Sequence[str] = ()) -> str:
    """The Fig. 5 frontier this group belongs to: compute-neutral axes plus settings (axes
    that change compute move a point along the frontier instead)."""
    r = self.first
    design = ablations.variant(r.model, r.axes, spec_lib.SHORT_NAMES[r.model],
                               compute_changing=False)
    return " ".join(x for x in (design, self.settings_text(varying)) if x)

  def legend(self, varying: Sequence[str] = (), *, compute_changing: bool = True) -> str:
    """Legend text from the axes' declarations ("ReLU6 in bottleneck base_lr=0.1")."""
    r = self.first
    text = ablations.describe(r.model, r.axes, spec_lib.TITLES[r.model],
                              compute_changing=compute_changing)
    return " ".join(x for x in (text, self.settings_text(varying)) if x)

  def per_seed(self, metric: str) -> dict[int, float]:
    """{seed: the runs' metric in %} of their `metric` ("final" | "best") value. Runs of one
    experiment with the same seed (the same run twice, e.g. with other bookkeeping) are averaged,
    with a warning: they are not independent seeds."""
    values: dict[int, list[float]] = collections.defaultdict(list)
    for r in self.runs:
      values[r.seed].append(100 * r.metric(metric))
    repeated = sorted(s for s, v in values.items() if len(v) > 1)
    if repeated:
      absl_logging.warning("%s: seeds %s appear in several runs (%s); averaging them",
                           self.variant, repeated, ", ".join(r.name for r in self.runs))
    return {s: sum(v) / len(v) for s, v in sorted(values.items())}

  def values(self, metric: str) -> list[float]:
    """The metric in percent, one per seed."""
    return list(self.per_seed(metric).values())


def finished(records: Sequence[collect.RunRecord], metric: str) -> list[collect.RunRecord]:
  return [r for r in records if r.status == run_record.FINISHED and r.metric(metric) is not None]


def varying_settings(records: Sequence[collect.RunRecord]) -> list[str]:
  """Settings keys that differ among `records` (they label groups and frontiers)."""
  return ablations.varying(r.settings for r in records)


def groups(records: Sequence[collect.RunRecord], metric: str) -> list[Group]:
  """The finished runs grouped by experiment, sorted by model, dataset, MAdds, width,
  resolution, variant. ValueError if `records` mix metrics (`collect.metric_of`)."""
  collect.metric_of(records)
  by_key: dict[tuple, list[collect.RunRecord]] = collections.defaultdict(list)
  for r in finished(records, metric):
    by_key[experiment_key(r)].append(r)
  out = [Group(key, tuple(sorted(runs, key=lambda r: r.seed))) for key, runs in by_key.items()]
  return sorted(out, key=lambda g: (g.first.model, str(g.first.dataset), g.first.madds or 0,
                                    g.first.width, g.first.resolution, g.variant,
                                    repr(g.key[2])))


def baseline_key(group: Group, baseline: Mapping[str, Any] | None = None) -> tuple | None:
  """The key of `group`'s equal-compute baseline, or None if `group` is that baseline.

  `baseline` overrides the declared baselines of compute-neutral axes ({field: value}).
  """
  point, axes, settings = group.key
  model = point[0]
  base = dict(axes)
  for axis in ablations.compute_neutral(model):
    base[axis.field] = axis.normalize((baseline or {}).get(axis.field, axis.baseline))
  key = (point, _items(base), settings)
  return None if key == group.key else key


def contrast(group: Group, base: Group) -> tuple[str, str]:
  """("shortcut=expansion", "shortcut=bottleneck"): the axes in which the two differ."""
  diff = [a for a in ablations.axes(group.first.model)
          if group.axes.get(a.field) != base.axes.get(a.field)]
  return (", ".join(f"{a.field}={group.axes[a.field]}" for a in diff),
          ", ".join(f"{a.field}={base.axes[a.field]}" for a in diff))
