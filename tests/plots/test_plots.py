"""Figures from constructed run dirs: the files exist and the plotted data equal the inputs."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from mnv2_jax import complexity
from mnv2_jax import spec as spec_lib
from mnv2_jax.plots import cli
from mnv2_jax.plots import fig5
from mnv2_jax.plots import fig6
from mnv2_jax.plots import paper_points
from mnv2_jax.plots import style
from mnv2_jax.results import collect
from mnv2_jax.results import pareto
from mnv2_jax.results import testing

STEPS = (100, 200, 300)
# (activation, shortcut) -> per-seed curves of eval top-1 fractions at STEPS.
CURVES = {
    ("linear", "bottleneck"): [(0.50, 0.70, 0.80), (0.54, 0.72, 0.84)],
    ("relu6", "bottleneck"): [(0.48, 0.66, 0.78), (0.50, 0.70, 0.76)],
    ("linear", "none"): [(0.40, 0.60, 0.70), (0.44, 0.62, 0.72)],
}
# Fig. 5 points: (model, width, resolution, final top-1).
GRID = [("mobilenet_v2", 0.35, 32, 0.60), ("mobilenet_v2", 0.5, 32, 0.58),
        ("mobilenet_v2", 0.35, 48, 0.70), ("mobilenet_v2", 1.0, 48, 0.69),
        ("mobilenet_v1", 0.25, 32, 0.50), ("mobilenet_v1", 0.5, 48, 0.62)]


def _find(ax, gid):
  found = [a for a in ax.get_children() if a.get_gid() == gid]
  assert len(found) == 1, (gid, [a.get_gid() for a in ax.get_children() if a.get_gid()])
  return found[0]


@pytest.fixture
def curve_records(tmp_path):
  for (act, sc), seeds in CURVES.items():
    for seed, values in enumerate(seeds):
      testing.write_run(str(tmp_path / f"{act}_{sc}_s{seed}"), bottleneck_activation=act,
                        shortcut=sc, seed=seed, curve=list(zip(STEPS, values)))
  return collect.collect(str(tmp_path))


@pytest.fixture
def grid_records(tmp_path):
  for model, width, res, top1 in GRID:
    testing.write_run(str(tmp_path / f"{model}_{width}_{res}"), model=model, width=width,
                      resolution=res, curve=[(10, top1)])
  return collect.collect(str(tmp_path))


def test_fig6_curves_equal_seed_means_and_bands(curve_records):
  ((stem, fig),) = fig6.figures(curve_records)
  assert stem == "fig6_sklearn_digits_w0.35_r32"
  ax_a, ax_b = fig.axes
  assert ax_a.get_title().startswith("(a)") and ax_b.get_title().startswith("(b)")
  for ax, variants in ((ax_a, ("linear/bottleneck", "relu6/bottleneck")),
                       (ax_b, ("linear/bottleneck", "linear/none"))):
    for variant in variants:
      seeds = np.array(CURVES[tuple(variant.split("/"))])
      line = _find(ax, f"curve:{variant}")
      np.testing.assert_allclose(line.get_xdata(), STEPS)
      np.testing.assert_allclose(line.get_ydata(), 100 * seeds.mean(axis=0))
      band = _find(ax, f"band:{variant}").get_paths()[0].vertices
      np.testing.assert_allclose(band[:, 1].min(), 100 * seeds.min())
      np.testing.assert_allclose(band[:, 1].max(), 100 * seeds.max())
    assert not [a for a in ax.get_children() if a.get_gid() == "curve:linear/expansion"]


def test_seed_band_std_and_ragged_seeds():
  steps, mean, lo, hi, n = fig6.seed_band([[(1, 0.2), (2, 0.4)], [(1, 0.4)]], band="std")
  np.testing.assert_allclose(steps, [1, 2])
  np.testing.assert_allclose(mean, [0.3, 0.4])
  np.testing.assert_allclose(n, [2, 1])
  np.testing.assert_allclose(hi - mean, [np.std([0.2, 0.4], ddof=1), 0.0])
  with pytest.raises(ValueError):
    fig6.seed_band([], band="iqr")


def test_fig5_points_frontiers_and_paper_overlay(grid_records):
  fig = fig5.figure(grid_records, overlay_paper=True)
  ax = fig.axes[0]
  assert ax.get_xscale() == "log"
  by_variant = {}
  for r in grid_records:
    by_variant.setdefault(r.variant, []).append((r.madds / 1e6, 100 * r.final_top1))
  for variant, pts in by_variant.items():
    pts = sorted(pts)
    offsets = _find(ax, f"points:{variant}").get_offsets()
    np.testing.assert_allclose(sorted(map(tuple, offsets)), pts)
    front = [pts[i] for i in pareto.frontier(pts)]
    line = _find(ax, f"frontier:{variant}")
    np.testing.assert_allclose(np.column_stack([line.get_xdata(), line.get_ydata()]), front)
  # 0.5/32 (58%) is dominated by 0.35/32 (60%, fewer MAdds) and 1.0/48 (69%) by 0.35/48
  # (70%): the V2 frontier is exactly the two others.
  np.testing.assert_allclose(_find(ax, "frontier:linear/bottleneck").get_ydata(), [60, 70])
  paper = _find(ax, "points:paper").get_offsets()
  assert len(paper) == 22
  np.testing.assert_allclose(sorted(map(tuple, paper)), sorted(
      (p.mmadds, p.top1) for p in paper_points.RELEASED_CHECKPOINTS))


def test_fig5_madds_ticks_are_readable(grid_records):
  """A few operating points: ticks at their MAdds, plain labels; a wide grid: no minor labels."""
  fig = fig5.figure(grid_records)   # 4 distinct MAdds values in the fixture's grid
  ax = fig.axes[0]
  fig.canvas.draw()
  want = sorted({round(r.madds / 1e6, 6) for r in grid_records})
  assert 0 < len(want) <= style.MAX_DATA_TICKS
  np.testing.assert_allclose(ax.get_xticks(), want)
  labels = [t.get_text() for t in ax.get_xticklabels()]
  assert labels == [style.plain_number(v) for v in want], labels
  assert not any(t.get_text() for t in ax.get_xticklabels(minor=True))
  with_paper = fig5.figure(grid_records, overlay_paper=True).axes[0]   # 22 + 4 values
  with_paper.figure.canvas.draw()
  assert len(with_paper.get_xticks()) < 10
  assert not any(t.get_text() for t in with_paper.get_xticklabels(minor=True))
  assert all(t.get_text().replace(".", "").isdigit() for t in with_paper.get_xticklabels()
             if t.get_text()), [t.get_text() for t in with_paper.get_xticklabels()]


def test_fig5_without_finished_runs_is_none(tmp_path):
  testing.write_run(str(tmp_path / "r"), curve=[(1, 0.5)], status="running")
  assert fig5.figure(collect.collect(str(tmp_path))) is None


def test_cli_writes_png_and_svg(curve_records, tmp_path):
  sweep = os.path.dirname(curve_records[0].workdir)
  out = str(tmp_path / "plots")
  assert cli.main([sweep, "--out", out, "--overlay_paper"]) == 0
  names = sorted(os.listdir(out))
  assert names == ["fig5.png", "fig5.svg", "fig6_sklearn_digits_w0.35_r32.png",
                   "fig6_sklearn_digits_w0.35_r32.svg"]
  with open(os.path.join(out, "fig5.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with open(os.path.join(out, "fig6_sklearn_digits_w0.35_r32.svg")) as f:
    assert "<svg" in f.read(2000)
  assert cli.main([str(tmp_path / "empty_dir_that_is_missing")]) == 1


def test_paper_points_match_our_complexity_count():
  """The hard-coded table agrees with mnv2_jax's own MAdds/params count (1001 classes)."""
  assert len(paper_points.RELEASED_CHECKPOINTS) == 22
  assert sum(p.in_fig5 for p in paper_points.RELEASED_CHECKPOINTS) == 21
  for p in paper_points.RELEASED_CHECKPOINTS:
    c = complexity.analyze_spec(spec_lib.mobilenet_v2_spec(p.width, p.resolution, 1001))
    assert c.madds // 1_000_000 == p.mmadds, p
    assert math.isclose(round(c.params_no_bn / 1e6, 2), p.params_m), p


def test_expansion_factor_moves_points_along_one_curve_per_width(tmp_path):
  """`along_expansion_factor`: one curve per width, points ordered by t at their real MAdds."""
  from mnv2_jax.plots import along  # pylint: disable=g-import-not-at-top
  tops = {(0.35, 2.0): (0.60, 0.62), (0.35, 6.0): (0.70, 0.74), (0.35, 10.0): (0.69, 0.69),
          (0.75, 2.0): (0.65, 0.67), (0.75, 6.0): (0.80, 0.82)}
  for (width, t), finals in tops.items():
    for seed, top1 in enumerate(finals):
      testing.write_run(str(tmp_path / f"w{width}_t{t}_s{seed}"), width=width, seed=seed,
                        expansion_factor=t, curve=[(10, top1)])
  records = collect.collect(str(tmp_path))
  ((stem, fig),) = along.figures(records)
  assert stem == "along_expansion_factor"
  (ax,) = fig.axes
  for width, ts in ((0.35, (2.0, 6.0, 10.0)), (0.75, (2.0, 6.0))):
    label = f"MobileNetV2 {width:g}/32 sklearn_digits linear/bottleneck"
    line = _find(ax, f"along:{label}")
    want_x = [complexity.analyze_spec(spec_lib.mobilenet_v2_spec(
        width, 32, 10, expansion_factor=t)).madds / 1e6 for t in ts]
    np.testing.assert_allclose(line.get_xdata(), want_x)
    np.testing.assert_allclose(line.get_ydata(), [100 * np.mean(tops[width, t]) for t in ts])
    assert np.all(np.diff(line.get_xdata()) > 0)  # more expansion, more MAdds
  assert {t.get_text() for t in ax.texts} == {"t2", "t6", "t10"}
  # Fig. 5 keeps one frontier for the design; t only moves its points.
  assert set(fig5.aggregate_points(records)) == {"linear/bottleneck"}
