"""Figures of detection / segmentation runs: drawn in their own metric (mAP, mIoU), apart from
the top-1 figures, and never with the paper's ImageNet top-1 points."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mnv2_jax.plots import cli
from mnv2_jax.plots import fig5
from mnv2_jax.plots import fig6
from mnv2_jax.results import collect
from mnv2_jax.results import testing

STEPS = (10, 20, 30)
# Segmentation runs: (activation) -> per-seed eval/mIoU curves at STEPS.
SEG = {"linear": [(0.20, 0.30, 0.40), (0.22, 0.34, 0.42)],
       "relu6": [(0.18, 0.28, 0.36), (0.20, 0.30, 0.38)]}


def _gids(ax, prefix):
  return sorted(a.get_gid() for a in ax.get_children()
                if a.get_gid() and a.get_gid().startswith(prefix))


@pytest.fixture
def seg_sweep(tmp_path):
  for act, seeds in SEG.items():
    for seed, values in enumerate(seeds):
      testing.write_run(str(tmp_path / f"seg_{act}_s{seed}"), head="deeplabv3", seed=seed,
                        bottleneck_activation=act, curve=list(zip(STEPS, values)))
  return tmp_path


def test_fig6_of_segmentation_runs_draws_their_miou_curves(seg_sweep):
  records = collect.collect(str(seg_sweep))
  ((stem, fig),) = fig6.figures(records)
  (ax,) = fig.axes   # one axis varies: the bottleneck activation
  for act, seeds in SEG.items():
    line = [a for a in ax.get_children() if a.get_gid() == f"curve:{act}/bottleneck"][0]
    np.testing.assert_allclose(line.get_ydata(), 100 * np.mean(seeds, axis=0))
  assert ax.get_ylabel() == "mIoU, %"
  assert "eval mIoU during training" in fig._suptitle.get_text()
  assert stem == "fig6_sklearn_digits_w0.35_r32"


def test_fig5_of_detection_runs_has_no_paper_points(tmp_path):
  for width, value in ((0.35, 0.2), (0.5, 0.25)):
    testing.write_run(str(tmp_path / f"det_{width}"), head="ssdlite", width=width,
                      curve=[(10, value)])
  records = collect.collect(str(tmp_path))
  fig = fig5.figure(records, overlay_paper=True)
  ax = fig.axes[0]
  assert ax.get_ylabel() == "mAP, %" and ax.get_title().startswith("mAP vs ")
  assert _gids(ax, "points:") == ["points:linear/bottleneck"]   # no "points:paper"
  (points,) = [a for a in ax.get_children() if a.get_gid() == "points:linear/bottleneck"]
  np.testing.assert_allclose(sorted(points.get_offsets()[:, 1]), [20, 25])
  rows = fig5.frontier_rows(records)
  assert [r["mAP_mean"] for r in rows] == [pytest.approx(20), pytest.approx(25)]
  assert "top1_mean" not in rows[0]


def test_mixed_metrics_are_refused_by_one_figure(seg_sweep):
  testing.write_run(str(seg_sweep / "cls"), curve=list(zip(STEPS, (0.5, 0.6, 0.7))))
  records = collect.collect(str(seg_sweep))
  with pytest.raises(ValueError, match="different metrics"):
    fig5.figure(records)
  with pytest.raises(ValueError, match="different metrics"):
    fig6.figures(records)


def test_cli_writes_each_metrics_figures_apart(seg_sweep, tmp_path):
  for seed in (0, 1):
    testing.write_run(str(seg_sweep / f"cls_s{seed}"), seed=seed,
                      curve=list(zip(STEPS, (0.5, 0.6, 0.7 + seed / 100))))
    testing.write_run(str(seg_sweep / f"cls_relu6_s{seed}"), seed=seed,
                      bottleneck_activation="relu6",
                      curve=list(zip(STEPS, (0.5, 0.6, 0.65 + seed / 100))))
  out = str(tmp_path / "plots")
  assert cli.main([str(seg_sweep), "--out", out, "--overlay_paper"]) == 0
  names = sorted(n for n in os.listdir(out) if n.endswith(".png"))
  assert names == ["fig5.png", "fig5_mIoU.png", "fig6_sklearn_digits_w0.35_r32.png",
                   "fig6_sklearn_digits_w0.35_r32_mIoU.png"]
