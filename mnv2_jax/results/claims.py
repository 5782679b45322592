"""The paper's ablation claims, tested against a sweep's runs (`mnv2-results --claims`).

One **claim** per statement of the paper, each with the paper's effect size where the reference
(shared/reference/mobilenet_v2.md) gives one, our statistic with its interval and n, and a
verdict. Axis names, values and baselines come from `mnv2_jax.ablations`; studies from
``experiments/``, and the preset of a "not run" command from the sweep's ``sweep.json``. Accuracies are top-1 in percent, deltas in
points; intervals are Student-t (`stats.summarize`, the wider and more honest of the two with
2-3 seeds), the percentile bootstrap (`stats.bootstrap_ci`) is reported beside them.

Statistics:

- **Paired axis contrasts** (Fig. 6a linear > ReLU6; Fig. 6b bottleneck > expansion and
  expansion > none, consecutive values of the declared shortcut axis): every pair of
  experiment groups that differ only in that axis (same operating point, other axes and
  settings) gives a per-seed delta ``better - worse`` (`stats.paired_delta`): one **per-point**
  row each. The **pooled** row (the claim's verdict) averages, per seed, that seed's deltas
  over the points where it was paired, then takes the t-interval over seeds: seeds are the
  independent replicates, so n = number of seeds (points of one seed are not independent
  replicates of the claim; pooling all (point, seed) deltas would overstate n).
- **Expansion rates 5-10 equivalent**: per point, the paired delta of every run t in [5, 10]
  minus the baseline t (6). An equivalence claim with margin ``margin`` points: *reproduces*
  when every comparison's t-interval lies within [-margin, +margin]; *contradicts* when some
  comparison's interval lies entirely outside it; *unresolved* otherwise. The pooled row's
  estimate is the largest |interval bound| over the comparisons.
- **Smaller nets prefer smaller t**: per seed and width (each operating point of the study),
  the least-squares slope of top-1 against log2(t) over the rates run at both the smallest and
  the largest width; statistic = slope(largest) - slope(smallest) (points per doubling of t),
  t-interval over seeds. Positive = the small net gains less (or loses more) from larger t,
  i.e. prefers smaller t.
- **V2 above V1 at equal MAdds** (Fig. 5): V1 and V2 never share MAdds. Per seed, the V2
  frontier (`pareto.frontier` of that seed's V2 points at the baseline design) is linearly
  interpolated in log(MAdds) at each V1 point of that seed; V1 points outside the V2 frontier's
  MAdds range are excluded (no extrapolation; the table says how many). Per V1 point: paired
  delta ``V2(interp) - V1`` over seeds; pooled: per-seed mean over that seed's V1 points,
  t-interval over seeds.

Verdicts: *reproduces* (sign matches and the interval excludes 0; equivalence: see above),
*contradicts* (the interval excludes 0 with the opposite sign), *unresolved* otherwise, or with
one seed (no interval), or *not run* (with the ``mnv2-sweep`` command that runs the study).
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mnv2_jax import ablations
from mnv2_jax.results import collect
from mnv2_jax.results import grouping
from mnv2_jax.results import pareto
from mnv2_jax.results import stats

REPRODUCES, CONTRADICTS, UNRESOLVED, NOT_RUN = "reproduces", "contradicts", "unresolved", "not run"
DEFAULT_MARGIN = 0.5
V1, V2 = "mobilenet_v1", "mobilenet_v2"
ACTIVATION, SHORTCUT, EXPANSION = ("model.bottleneck_activation", "model.shortcut",
                                   "model.expansion_factor")
EQUIVALENT_RATES = (5.0, 10.0)  # paper §3.4: "expansion rates between 5 and 10"

# The paper's numbers, read from the reference (shared/reference/mobilenet_v2.md §4.4-4.7).
PAPER = {
    (ACTIVATION, "linear", "relu6"): (
        0.65, "Fig. 6a (ref. §4.6): linear ≈71.0 vs ReLU6 ≈70.35 top-1 at 7M steps"),
    (SHORTCUT, "bottleneck", "expansion"): (
        0.5, "Fig. 6b (ref. §4.6): bottleneck ≈71.0 vs expansion ≈70.5 at 7M steps"),
    (SHORTCUT, "expansion", "none"): (
        0.9, "Fig. 6b (ref. §4.6): expansion ≈70.5 vs no residual ≈69.6 at 7M steps"),
    "equivalence": (None, "§3.4 / Table 2 text (ref. §4.2): 'expansion rates between 5 and 10 "
                          "result in nearly identical performance curves'; no numbers"),
    "small_t": (None, "§3.4 text (ref. §4.2): 'smaller networks being better off with "
                      "slightly smaller expansion rates'; no numbers"),
    "v1v2": (4.1, "Table 4 (ref. §4.4): V2 (1.4) 74.7 @585M vs V1 70.6 @575M; Fig. 5 shows V2 "
                  "above V1 everywhere, values not tabulated"),
}
STUDIES = {ACTIVATION: "fig6a_nonlinearity", SHORTCUT: "fig6b_shortcut",
           EXPANSION: "expansion_rate", "v1v2": "fig5_pareto"}


@dataclasses.dataclass
class Claim:
  """One row of claims.md: a pooled claim (scope "pooled") or one of its per-point rows."""
  claim: str
  scope: str
  paper_effect: float | None
  paper_source: str
  statistic: str
  n: int = 0
  estimate: float | None = None
  ci_lo: float | None = None
  ci_hi: float | None = None
  boot_lo: float | None = None
  boot_hi: float | None = None
  verdict: str = NOT_RUN
  reason: str = ""

  def row(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def sweep_command(study: str, preset: str | None) -> str:
  """The command that runs `study` (an experiments/ file) with 3 seeds and a report.

  Without a known preset it says `--preset=<preset>`: the names live in the sweep layer
  (`mnv2_jax.sweeps.presets`), which results must not import (tests/test_layering.py)."""
  preset = preset or "<preset>"
  return f"mnv2-sweep experiments/{study}.py --preset={preset} --seeds=3 --report"


def verdict(summary: stats.Summary, sign: int = 1) -> tuple[str, str]:
  """(verdict, reason) of a directional claim: `sign` * mean > 0 expected."""
  if summary.n == 0:
    return NOT_RUN, "no paired runs"
  if summary.n == 1:
    return UNRESOLVED, "1 seed: no confidence interval (run --seeds>=2, better 3)"
  lo, hi = summary.ci
  if lo > 0 or hi < 0:
    if (lo > 0) == (sign > 0):
      return REPRODUCES, "sign matches and the CI excludes 0"
    return CONTRADICTS, "the CI excludes 0 with the opposite sign"
  return UNRESOLVED, "the CI includes 0"


def equivalence_verdict(summaries: Sequence[stats.Summary], margin: float) -> tuple[str, str]:
  """(verdict, reason) of "all these deltas are within ±margin"."""
  if not summaries:
    return NOT_RUN, "no paired runs"
  if min(s.n for s in summaries) < 2:
    return UNRESOLVED, "1 seed: no confidence interval (run --seeds>=2, better 3)"
  cis = [s.ci for s in summaries]
  if any(lo > margin or hi < -margin for lo, hi in cis):
    return CONTRADICTS, f"a CI lies entirely outside ±{margin:g}"
  if all(-margin <= lo and hi <= margin for lo, hi in cis):
    return REPRODUCES, f"every CI lies within ±{margin:g}"
  return UNRESOLVED, f"some CI crosses ±{margin:g}"


def _fill(c: Claim, values: Sequence[float], confidence: float, n_boot: int,
          sign: int = 1) -> Claim:
  s = stats.summarize(values, confidence)
  c.n, c.estimate = s.n, (s.mean if s.n else None)
  if s.n >= 2:
    c.ci_lo, c.ci_hi = s.ci
    c.boot_lo, c.boot_hi = stats.bootstrap_ci(values, confidence, n_boot)
  c.verdict, c.reason = verdict(s, sign)
  return c


def _varying(groups: Sequence[grouping.Group]) -> list[str]:
  return grouping.varying_settings([r for g in groups for r in g.runs])


def _scope(g: grouping.Group, extra: str = "", varying: Sequence[str] = ()) -> str:
  """"w0.35 r32 sklearn_digits <extra> base_lr=0.1" (settings only where they vary)."""
  r = g.first
  return " ".join(x for x in (f"w{r.width:g} r{r.resolution}", r.dataset or "", extra,
                              g.settings_text(varying)) if x)


def _context(g: grouping.Group, field: str) -> str:
  """The design a contrast was made in: the other shown axes ("bottleneck", "relu6/t4")."""
  r = g.first
  return "/".join(a.token(r.axes[a.field]) for a in ablations.axes(r.model)
                  if a.field != field and a.shown(r.axes[a.field]))


def _with_axis(key: tuple, field: str, value: Any) -> tuple:
  point, axes, settings = key
  return (point, tuple(sorted({**dict(axes), field: value}.items())), settings)


def _pooled(per_point: dict[str, dict[int, float]]) -> list[float]:
  """Per seed, the mean of its deltas over the points where it was paired."""
  by_seed: dict[int, list[float]] = collections.defaultdict(list)
  for deltas in per_point.values():
    for seed, d in deltas.items():
      by_seed[seed].append(d)
  return [sum(v) / len(v) for _, v in sorted(by_seed.items())]


def _not_run(c: Claim, study: str, preset: str | None) -> Claim:
  c.verdict = NOT_RUN
  c.reason = f"no runs with the needed axis values; run: {sweep_command(study, preset)}"
  return c


def contrast_claims(groups: Sequence[grouping.Group], metric: str, path: str, better: Any,
                    worse: Any, confidence: float, n_boot: int, preset: str | None) -> list[Claim]:
  """Pooled + per-point rows of "`better` > `worse`" on axis `path` (paired per seed)."""
  axis = ablations.get(path)
  effect, source = PAPER.get((path, better, worse), (None, "not in the reference"))
  name = f"{axis.value_label(better)} > {axis.value_label(worse)}"
  stat = f"{axis.field}: {better} - {worse}, paired per seed (points)"
  by_key = {g.key: g for g in groups}
  varying = _varying(groups)
  per_point: dict[str, dict[int, float]] = {}
  rows = []
  for g in groups:
    if g.first.model not in axis.models or g.axes.get(axis.field) != better:
      continue
    other = by_key.get(_with_axis(g.key, axis.field, worse))
    delta = other and stats.paired_delta(other.per_seed(metric), g.per_seed(metric), confidence,
                                         n_boot)
    if not delta:
      continue
    scope = _scope(g, _context(g, axis.field), varying)
    per_point[scope] = dict(zip(delta.seeds, delta.deltas))
    rows.append(_fill(Claim(name, scope, effect, source, stat), delta.deltas, confidence,
                      n_boot))
  pooled = Claim(name, "pooled", effect, source,
                 stat + f"; pooled: per-seed mean over {len(rows)} point(s)")
  if not rows:
    return [_not_run(pooled, STUDIES[path], preset)]
  return [_fill(pooled, _pooled(per_point), confidence, n_boot)] + rows


def _expansion_families(groups: Sequence[grouping.Group]):
  """{family: {(width, resolution): {t: group}}} of V2 groups (family = dataset, settings,
  other axes)."""
  field = ablations.get(EXPANSION).field
  out: dict = collections.defaultdict(lambda: collections.defaultdict(dict))
  for g in groups:
    if g.first.model != V2:
      continue
    point, axes, settings = g.key
    rest = tuple((k, v) for k, v in axes if k != field)
    out[(point[0], point[1], rest, settings)][(point[2], point[3])][g.axes[field]] = g
  return out


def expansion_claims(groups: Sequence[grouping.Group], metric: str, margin: float,
                     confidence: float, n_boot: int, preset: str | None) -> list[Claim]:
  """The equivalence claim (5 <= t <= 10 vs the baseline t) and "smaller nets prefer smaller t"."""
  base_t = ablations.baseline(EXPANSION)
  lo_t, hi_t = EQUIVALENT_RATES
  effect, source = PAPER["equivalence"]
  name = f"expansion rates {lo_t:g}-{hi_t:g} equivalent (±{margin:g} points)"
  stat = f"t - {base_t:g}, paired per seed, each t in [{lo_t:g}, {hi_t:g}]"
  rows, summaries = [], []
  varying = _varying(groups)
  families = _expansion_families(groups)
  for family in families.values():
    for by_t in family.values():
      base = by_t.get(base_t)
      others = [t for t in sorted(by_t) if lo_t <= t <= hi_t and t != base_t]
      for t in others if base is not None else ():
        delta = stats.paired_delta(base.per_seed(metric), by_t[t].per_seed(metric), confidence,
                                   n_boot)
        if delta is None:
          continue
        scope = _scope(by_t[t], f"t{t:g}", varying)
        c = _fill(Claim(name, scope, effect, source, stat), delta.deltas, confidence, n_boot)
        c.verdict, c.reason = equivalence_verdict([delta.summary], margin)
        rows.append(c)
        summaries.append(delta.summary)
  pooled = Claim(name, "pooled", effect, source,
                 f"{stat}; pooled estimate: largest |CI bound| over {len(rows)} comparison(s)")
  if not rows:
    out = [_not_run(pooled, STUDIES[EXPANSION], preset)]
  else:
    bounds = [abs(b) for s in summaries for b in s.ci if not math.isnan(b)]
    pooled.n = min(s.n for s in summaries)
    pooled.estimate = max(bounds) if bounds else None
    pooled.verdict, pooled.reason = equivalence_verdict(summaries, margin)
    out = [pooled] + rows
  return out + small_t_claims(families, metric, confidence, n_boot, preset, varying)


def _slope(by_t: dict[float, float]) -> float:
  x = np.log2(np.asarray(list(by_t), dtype=np.float64))
  return float(np.polyfit(x, np.asarray(list(by_t.values())), 1)[0])


def small_t_claims(families, metric: str, confidence: float, n_boot: int,
                   preset: str | None, varying: Sequence[str] = ()) -> list[Claim]:
  """slope(largest width) - slope(smallest width) of top-1 vs log2(t), per seed."""
  effect, source = PAPER["small_t"]
  name = "smaller nets prefer smaller t"
  stat = "per seed: slope of top-1 vs log2(t), largest minus smallest width (points/doubling)"
  rows = []
  for family in families.values():
    points = sorted(p for p in family if len(family[p]) >= 2)  # points where t was varied
    if len(points) < 2:
      continue
    small, large = family[points[0]], family[points[-1]]
    rates = sorted(set(small) & set(large))
    seeds = set.intersection(*(set(g.per_seed(metric)) for g in
                               [small[t] for t in rates] + [large[t] for t in rates])) \
        if rates else set()
    if len(rates) < 2 or not seeds:
      continue
    diffs = [_slope({t: large[t].per_seed(metric)[s] for t in rates})
             - _slope({t: small[t].per_seed(metric)[s] for t in rates}) for s in sorted(seeds)]
    g = small[rates[0]]
    scope = (f"w{points[0][0]:g} r{points[0][1]} vs w{points[-1][0]:g} r{points[-1][1]} "
             f"{g.first.dataset or ''} t={','.join(f'{t:g}' for t in rates)} "
             f"{g.settings_text(varying)}").strip()
    rows.append(_fill(Claim(name, scope, effect, source, stat), diffs, confidence, n_boot))
  if not rows:
    return [_not_run(Claim(name, "pooled", effect, source, stat), STUDIES[EXPANSION], preset)]
  if len(rows) == 1:
    rows[0].scope = "pooled: " + rows[0].scope
    return rows
  pooled = _fill(Claim(name, "pooled", effect, source, stat + "; mean over families"),
                 [r.estimate for r in rows], confidence, n_boot)
  return [pooled] + rows


def interpolate_log(frontier: Sequence[tuple[float, float]], madds: float) -> float | None:
  """Accuracy of a (MAdds, top-1) frontier (increasing MAdds) at `madds`, linear in
  log(MAdds); None outside the frontier's MAdds range (no extrapolation)."""
  xs = [math.log(m) for m, _ in frontier]
  if not frontier or not xs[0] <= math.log(madds) <= xs[-1]:
    return None
  return float(np.interp(math.log(madds), xs, [a for _, a in frontier]))


def v1_v2_claims(groups: Sequence[grouping.Group], metric: str, confidence: float, n_boot: int,
                 preset: str | None) -> list[Claim]:
  """V2's per-seed frontier interpolated at V1's points, minus V1 (see the module doc)."""
  effect, source = PAPER["v1v2"]
  name = "V2 above V1 at equal MAdds"
  base_axes = tuple(sorted(ablations.baselines(V2).items()))
  fams: dict = collections.defaultdict(lambda: {"v1": [], "v2": []})
  for g in groups:
    point, axes, settings = g.key
    if g.first.madds and (g.first.model == V1 or (g.first.model == V2 and axes == base_axes)):
      fams[(point[1], settings)]["v1" if g.first.model == V1 else "v2"].append(g)
  per_point: dict[str, dict[int, float]] = {}
  rows, excluded = [], []
  varying = _varying(groups)
  for fam in fams.values():
    frontiers = {}
    for seed in {s for g in fam["v2"] for s in g.per_seed(metric)}:
      pts = [(float(g.first.madds), g.per_seed(metric)[seed]) for g in fam["v2"]
             if seed in g.per_seed(metric)]
      frontiers[seed] = [pts[i] for i in pareto.frontier(pts)]
    for g in fam["v1"]:
      deltas = {}
      for seed, v1 in g.per_seed(metric).items():
        v2 = interpolate_log(frontiers[seed], g.first.madds) if seed in frontiers else None
        if v2 is not None:
          deltas[seed] = v2 - v1
      scope = _scope(g, f"V1 @{g.first.madds / 1e6:.3g}M", varying)
      if not deltas:
        excluded.append(scope)
        continue
      per_point[scope] = deltas
      rows.append(_fill(Claim(name, scope, effect, source,
                              "V2 frontier (log-MAdds interp.) - V1, per seed"),
                        list(deltas.values()), confidence, n_boot))
  stat = ("per seed: V2 frontier interpolated in log-MAdds at V1's points (inside V2's MAdds "
          "range only, no extrapolation) minus V1, mean over V1 points")
  pooled = Claim(name, "pooled", effect, source,
                 stat + f"; {len(rows)} V1 point(s) used, {len(excluded)} outside V2's range")
  if not rows:
    c = _not_run(pooled, STUDIES["v1v2"], preset)
    if excluded:
      c.verdict, c.reason = UNRESOLVED, "every V1 point lies outside V2's MAdds range"
    return [c]
  pooled = _fill(pooled, _pooled(per_point), confidence, n_boot)
  if excluded:
    pooled.reason += "; excluded (outside V2's range): " + ", ".join(excluded)
  return [pooled] + rows


def claims(records: Sequence[collect.RunRecord], metric: str = "final", *,
           margin: float = DEFAULT_MARGIN, confidence: float = stats.DEFAULT_CONFIDENCE,
           n_boot: int = stats.DEFAULT_BOOTSTRAP, preset: str | None = None) -> list[Claim]:
  """Every claim's rows (pooled first, then per point), in the paper's order."""
  groups = grouping.groups(records, metric)
  out = []
  act = ablations.get(ACTIVATION)
  out += contrast_claims(groups, metric, ACTIVATION, act.baseline,
                         *[v for v in act.values if v != act.baseline][:1],
                         confidence=confidence, n_boot=n_boot, preset=preset)
  shortcut = ablations.get(SHORTCUT)
  for better, worse in zip(shortcut.values, shortcut.values[1:]):
    out += contrast_claims(groups, metric, SHORTCUT, better, worse, confidence, n_boot, preset)
  out += expansion_claims(groups, metric, margin, confidence, n_boot, preset)
  out += v1_v2_claims(groups, metric, confidence, n_boot, preset)
  return out
