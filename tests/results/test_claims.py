"""`mnv2-results --claims` on constructed sweep dirs (`results.testing.write_run`): verdicts,
the equivalence margin, the V1-vs-V2 interpolation, "not run" commands and the CLI's files."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from mnv2_jax.logging import read_offline_run
from mnv2_jax.results import claims as claims_lib
from mnv2_jax.results import cli
from mnv2_jax.results import collect
from mnv2_jax.results import stats
from mnv2_jax.results import testing

NOISE = (0.0, 0.3, -0.2)  # per-seed offsets shared by both arms (what pairing removes)


def _run(d, name, acc, **kw):
  """A finished run with final top-1 `acc` (percent)."""
  testing.write_run(str(d / name), curve=[(10, acc / 100)], final_top1=acc / 100, **kw)


def _claims(d, **kw):
  return claims_lib.claims(collect.collect(str(d)), n_boot=200, **kw)


def _by(claims, prefix, scope="pooled"):
  (c,) = [c for c in claims if c.claim.startswith(prefix) and c.scope.startswith(scope)]
  return c


def _fig6a(d, deltas, seeds=3, points=((0.35, 32), (0.5, 32))):
  """Linear and ReLU6 runs; linear - relu6 = deltas[seed] at every point."""
  for w, r in points:
    for s in range(seeds):
      base = 80 + 5 * w + NOISE[s % 3]
      _run(d, f"lin_w{w}_r{r}_s{s}", base + deltas[s], width=w, resolution=r, seed=s)
      _run(d, f"relu_w{w}_r{r}_s{s}", base, width=w, resolution=r, seed=s,
           bottleneck_activation="relu6")


def test_linear_vs_relu6_reproduces_per_point_and_pooled(tmp_path):
  _fig6a(tmp_path, (0.6, 0.8, 0.7))
  claims = _claims(tmp_path)
  pooled = _by(claims, "Linear bottleneck > ReLU6")
  assert (pooled.verdict, pooled.n) == (claims_lib.REPRODUCES, 3)
  assert pooled.estimate == pytest.approx(0.7)
  s = stats.summarize([0.6, 0.8, 0.7])
  assert (pooled.ci_lo, pooled.ci_hi) == pytest.approx(s.ci)
  assert pooled.paper_effect == pytest.approx(0.65) and "Fig. 6a" in pooled.paper_source
  points = [c for c in claims if c.claim == pooled.claim and c.scope != "pooled"]
  assert sorted(c.scope.split()[0] for c in points) == ["w0.35", "w0.5"]
  assert all(c.verdict == claims_lib.REPRODUCES and c.n == 3 for c in points)


def test_flipped_sign_contradicts(tmp_path):
  _fig6a(tmp_path, (-0.6, -0.8, -0.7))
  pooled = _by(_claims(tmp_path), "Linear bottleneck > ReLU6")
  assert pooled.verdict == claims_lib.CONTRADICTS
  assert pooled.estimate == pytest.approx(-0.7)


def test_ci_spanning_zero_is_unresolved(tmp_path):
  _fig6a(tmp_path, (0.9, -0.7, 0.1))
  pooled = _by(_claims(tmp_path), "Linear bottleneck > ReLU6")
  assert pooled.verdict == claims_lib.UNRESOLVED and "includes 0" in pooled.reason
  assert pooled.ci_lo < 0 < pooled.ci_hi


def test_pooling_is_per_seed_mean_over_points(tmp_path):
  """Seed 0 gains 1.0 at one point and 0.0 at the other: its pooled delta is 0.5, n = seeds."""
  for s, (a, b) in enumerate(((1.0, 0.0), (0.6, 0.4), (0.9, 0.5))):
    for (w, delta) in ((0.35, a), (0.5, b)):
      _run(tmp_path, f"lin_w{w}_s{s}", 80 + delta, width=w, seed=s)
      _run(tmp_path, f"relu_w{w}_s{s}", 80, width=w, seed=s, bottleneck_activation="relu6")
  pooled = _by(_claims(tmp_path), "Linear bottleneck > ReLU6")
  assert pooled.n == 3
  assert (pooled.ci_lo, pooled.ci_hi) == pytest.approx(stats.summarize([0.5, 0.5, 0.7]).ci)


def test_runs_differing_in_a_setting_are_separate_rows(tmp_path):
  """Two learning rates: never paired across, each its own labelled per-point row."""
  for lr, delta in ((0.1, 0.6), (0.2, -0.6)):
    for s in range(3):
      kw = dict(seed=s, config_updates={"optim.base_lr": lr})
      _run(tmp_path, f"lin_lr{lr}_s{s}", 80 + delta + 0.1 * s, **kw)
      _run(tmp_path, f"relu_lr{lr}_s{s}", 80, bottleneck_activation="relu6", **kw)
  claims = _claims(tmp_path)
  rows = {c.scope: c for c in claims if c.claim.startswith("Linear") and c.scope != "pooled"}
  assert sorted(rows) == ["w0.35 r32 sklearn_digits bottleneck base_lr=0.1",
                          "w0.35 r32 sklearn_digits bottleneck base_lr=0.2"]
  assert rows["w0.35 r32 sklearn_digits bottleneck base_lr=0.1"].verdict == claims_lib.REPRODUCES
  assert rows["w0.35 r32 sklearn_digits bottleneck base_lr=0.2"].verdict == \
      claims_lib.CONTRADICTS


def test_one_seed_is_unresolved_with_the_reason(tmp_path):
  _fig6a(tmp_path, (0.6,), seeds=1)
  pooled = _by(_claims(tmp_path), "Linear bottleneck > ReLU6")
  assert (pooled.verdict, pooled.n) == (claims_lib.UNRESOLVED, 1)
  assert "1 seed" in pooled.reason and pooled.ci_lo is None


def test_shortcut_claims_and_not_run_commands(tmp_path):
  for s in range(3):  # bottleneck > expansion by ~0.5, expansion < none (contradicts)
    for shortcut, acc in (("bottleneck", 80.5), ("expansion", 80.0), ("none", 80.4)):
      _run(tmp_path, f"{shortcut}_s{s}", acc + NOISE[s] + 0.05 * s * (shortcut == "none"),
           seed=s, shortcut=shortcut)
  with open(tmp_path / "sweep.json", "w", encoding="utf-8") as f:
    json.dump({"preset": "small", "runs": []}, f)
  claims = claims_lib.claims(collect.collect(str(tmp_path)), n_boot=200,
                             preset=cli.manifest_preset([str(tmp_path)]))
  assert _by(claims, "Shortcut between bottlenecks >").verdict == claims_lib.REPRODUCES
  assert _by(claims, "Shortcut between expansions > No").verdict == claims_lib.CONTRADICTS
  act = _by(claims, "Linear bottleneck > ReLU6")
  assert act.verdict == claims_lib.NOT_RUN
  assert ("mnv2-sweep experiments/fig6a_nonlinearity.py --preset=small --seeds=3 --report"
          in act.reason)
  assert "experiments/expansion_rate.py" in _by(claims, "expansion rates").reason
  assert "experiments/fig5_pareto.py" in _by(claims, "V2 above V1").reason
  assert _by(claims, "smaller nets").verdict == claims_lib.NOT_RUN


def test_not_run_without_manifest_leaves_the_preset_to_fill_in(tmp_path):
  _fig6a(tmp_path, (0.6, 0.8, 0.7))
  c = _by(_claims(tmp_path), "Shortcut between bottlenecks >")
  assert c.verdict == claims_lib.NOT_RUN
  assert "--preset=<preset>" in c.reason


def _expansion(d, delta_of_t, seeds=3, widths=(0.35, 1.0), rates=(2.0, 4.0, 5.0, 6.0, 8.0, 10.0)):
  for w in widths:
    for t in rates:
      for s in range(seeds):
        _run(d, f"w{w}_t{t:g}_s{s}", 80 + NOISE[s % 3] + delta_of_t(w, t, s), width=w,
             expansion_factor=t, seed=s)


def test_equivalence_within_margin_reproduces(tmp_path):
  _expansion(tmp_path, lambda w, t, s: 0.05 * ((s + int(t)) % 3 - 1))
  claims = _claims(tmp_path)
  c = _by(claims, "expansion rates 5-10")
  assert c.verdict == claims_lib.REPRODUCES, c
  assert c.estimate <= 0.5
  rows = [r for r in claims if r.claim == c.claim and r.scope != "pooled"]
  assert sorted(r.scope.split()[-1] for r in rows) == ["t10", "t10", "t5", "t5", "t8", "t8"]
  # A tighter margin than the CIs' bounds: no longer shown equivalent.
  tight = _by(_claims(tmp_path, margin=0.01), "expansion rates 5-10")
  assert tight.verdict == claims_lib.UNRESOLVED and "±0.01" in tight.claim


def test_equivalence_outside_margin_contradicts(tmp_path):
  _expansion(tmp_path, lambda w, t, s: -2.0 + 0.1 * s if t == 10 else 0.0)
  c = _by(_claims(tmp_path), "expansion rates 5-10")
  assert c.verdict == claims_lib.CONTRADICTS and "outside" in c.reason


def test_equivalence_ci_crossing_margin_is_unresolved(tmp_path):
  _expansion(tmp_path, lambda w, t, s: (0.4, -0.3, 1.0)[s] if t == 8 else 0.0)
  assert _by(_claims(tmp_path), "expansion rates 5-10").verdict == claims_lib.UNRESOLVED


def test_smaller_nets_prefer_smaller_t(tmp_path):
  """Small width loses 1 point per doubling of t, large gains 0.5: slope difference 1.5."""
  slope = {0.35: -1.0, 1.0: 0.5}
  _expansion(tmp_path, lambda w, t, s: slope[w] * math.log2(t) + 0.1 * s * (w == 1.0))
  c = _by(_claims(tmp_path), "smaller nets", scope="pooled")
  assert c.verdict == claims_lib.REPRODUCES
  assert (c.estimate, c.n) == (pytest.approx(1.5), 3)
  flipped = tmp_path / "flipped"
  _expansion(flipped, lambda w, t, s: -slope[w] * math.log2(t) + 0.1 * s * (w == 1.0))
  assert _by(_claims(flipped), "smaller nets").verdict == claims_lib.CONTRADICTS


def test_interpolate_log():
  frontier = [(10e6, 50.0), (40e6, 60.0)]
  assert claims_lib.interpolate_log(frontier, 20e6) == pytest.approx(55.0)  # log midpoint
  assert claims_lib.interpolate_log(frontier, 10e6) == pytest.approx(50.0)
  assert claims_lib.interpolate_log(frontier, 9e6) is None
  assert claims_lib.interpolate_log(frontier, 41e6) is None


def test_v2_above_v1_interpolates_and_excludes_out_of_range(tmp_path):
  v2 = {0: (50.0, 60.0), 1: (51.0, 61.0), 2: (49.0, 60.5)}  # at 10 M and 40 M MAdds
  v1 = {0: 54.0, 1: 55.0, 2: 53.0}                        # at 20 M: inside V2's range
  for s in range(3):
    _run(tmp_path, f"v2a_s{s}", v2[s][0], seed=s, madds=10_000_000)
    _run(tmp_path, f"v2b_s{s}", v2[s][1], width=0.5, seed=s, madds=40_000_000)
    _run(tmp_path, f"v1a_s{s}", v1[s], model="mobilenet_v1", width=0.5, seed=s,
         madds=20_000_000)
    _run(tmp_path, f"v1b_s{s}", 10.0, model="mobilenet_v1", width=1.0, seed=s,
         madds=100_000_000)  # outside: would pull the mean far up if extrapolated
  claims = _claims(tmp_path)
  c = _by(claims, "V2 above V1")
  expected = [(v2[s][0] + v2[s][1]) / 2 - v1[s] for s in range(3)]  # 1.0, 1.0, 1.75
  assert c.estimate == pytest.approx(np.mean(expected))
  assert (c.ci_lo, c.ci_hi) == pytest.approx(stats.summarize(expected).ci)
  assert (c.n, c.verdict) == (3, claims_lib.REPRODUCES)
  assert "1 V1 point(s) used, 1 outside" in c.statistic and "@100M" in c.reason
  assert len([r for r in claims if r.claim == c.claim]) == 2  # pooled + the one used point
  # V1 above the V2 frontier: contradicts.
  hi = tmp_path / "hi"
  for s in range(3):
    _run(hi, f"v2a_s{s}", v2[s][0], seed=s, madds=10_000_000)
    _run(hi, f"v2b_s{s}", v2[s][1], width=0.5, seed=s, madds=40_000_000)
    _run(hi, f"v1a_s{s}", v1[s] + 3, model="mobilenet_v1", width=0.5, seed=s, madds=20_000_000)
  assert _by(_claims(hi), "V2 above V1").verdict == claims_lib.CONTRADICTS


def test_cli_writes_claims_and_logs_them(tmp_path, capsys):
  sweep_a, sweep_b = tmp_path / "a", tmp_path / "b"
  _fig6a(sweep_a, (0.6, 0.8, 0.7), points=((0.35, 32),))
  for s in range(3):
    for shortcut, acc in (("expansion", 79.5), ("none", 79.0)):
      _run(sweep_b, f"{shortcut}_s{s}", acc + NOISE[s], seed=s, shortcut=shortcut)
  out = tmp_path / "out"
  assert cli.main([str(sweep_a), str(sweep_b), "--claims", "--out", str(out),
                   "--wandb_mode", "offline", "--bootstrap", "200"]) == 0
  md = (out / "claims.md").read_text(encoding="utf-8")
  assert "## Verdicts" in md and "Fig. 6a" in md and "## Definitions" in md
  assert "- Linear bottleneck > ReLU6 in bottleneck: reproduces" in md
  assert "- Shortcut between expansions > No residual: reproduces" in md
  assert "experiments/expansion_rate.py --preset=<" in md
  data = json.loads((out / "claims.json").read_text(encoding="utf-8"))
  verdicts = {r["claim"]: r["verdict"] for r in data["claims"] if r["scope"] == "pooled"}
  assert verdicts["Shortcut between bottlenecks > Shortcut between expansions"] == "reproduces"
  assert (out / "claims.csv").read_text(encoding="utf-8").startswith("claim,scope,")
  run = read_offline_run(str(out), reader="parser")
  assert run["job_type"] == "report"
  assert run["summary"]["results/claims"]["_type"] == "table-file"
  assert run["summary"]["claim_verdicts"]["Linear bottleneck > ReLU6 in bottleneck"] == \
      "reproduces"
  assert "claims.md" not in capsys.readouterr().err
  assert not os.path.exists(sweep_a / "results")  # --out honoured
