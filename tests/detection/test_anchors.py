"""mnv2_jax.detection.anchors: TF ssd_anchor_generator counts, order and hand-computed values."""

import math
import subprocess
import sys

import numpy as np
import pytest

from mnv2_jax.detection import anchors


def test_box_specs_defaults():
  specs = anchors.box_specs()
  assert specs[0] == [(0.1, 1.0), (0.2, 2.0), (0.2, 0.5)]
  # scale_1 = 0.2 + 0.75 / 5 = 0.35, scale_2 = 0.5; interpolated = sqrt(0.35 * 0.5).
  assert [s for s, _ in specs[1][:5]] == pytest.approx([0.35] * 5)
  assert [a for _, a in specs[1]] == pytest.approx([1.0, 2.0, 0.5, 3.0, 1 / 3, 1.0])
  assert specs[1][5][0] == pytest.approx(math.sqrt(0.35 * 0.5))
  # last layer: scale 0.95, interpolated with the extra scale 1.0.
  assert specs[5][0][0] == pytest.approx(0.95)
  assert specs[5][5][0] == pytest.approx(math.sqrt(0.95))


def test_anchors_per_location():
  assert anchors.anchors_per_location() == (3, 6, 6, 6, 6, 6)
  assert anchors.anchors_per_location(
      anchors.AnchorConfig(reduce_boxes_in_lowest_layer=False)) == (6,) * 6
  assert anchors.anchors_per_location(
      anchors.AnchorConfig(num_layers=3, interpolated_scale_aspect_ratio=0.0)) == (3, 5, 5)


@pytest.mark.parametrize("sizes,expected", [((19, 10, 5, 3, 2, 1), 1917),
                                            ((20, 10, 5, 3, 2, 1), 2034)])
def test_counts(sizes, expected):
  boxes = anchors.generate(sizes)
  assert boxes.shape == (expected, 4) and boxes.dtype == np.float32
  assert anchors.num_anchors(sizes) == expected


def test_hand_values_and_order():
  boxes = anchors.generate((19, 10, 5, 3, 2, 1))
  c0, c1 = 0.5 / 19, 1.5 / 19
  # cell (0, 0), spec (0.1, 1.0)
  np.testing.assert_allclose(boxes[0], [c0 - 0.05, c0 - 0.05, c0 + 0.05, c0 + 0.05], atol=1e-6)
  # cell (0, 0), spec (0.2, 2.0): h = 0.2 / sqrt(2), w = 0.2 * sqrt(2) (wide box)
  h, w = 0.2 / math.sqrt(2), 0.2 * math.sqrt(2)
  np.testing.assert_allclose(boxes[1], [c0 - h / 2, c0 - w / 2, c0 + h / 2, c0 + w / 2],
                             atol=1e-6)
  # x varies fastest: index 3 is cell (row 0, col 1), index 57 = 19 * 3 is cell (row 1, col 0)
  np.testing.assert_allclose(boxes[3], [c0 - 0.05, c1 - 0.05, c0 + 0.05, c1 + 0.05], atol=1e-6)
  np.testing.assert_allclose(boxes[57], [c1 - 0.05, c0 - 0.05, c1 + 0.05, c0 + 0.05], atol=1e-6)
  # first anchor of layer 1 (10x10, scale 0.35, centre 0.05); its 6th is the interpolated box
  first = 19 * 19 * 3
  np.testing.assert_allclose(boxes[first], [-0.125, -0.125, 0.225, 0.225], atol=1e-6)
  s = math.sqrt(0.35 * 0.5)
  np.testing.assert_allclose(boxes[first + 5], [0.05 - s / 2, 0.05 - s / 2, 0.05 + s / 2,
                                                0.05 + s / 2], atol=1e-6)
  # the very last anchor: 1x1 grid, interpolated scale sqrt(0.95), not clipped to [0, 1]
  s = math.sqrt(0.95)
  np.testing.assert_allclose(boxes[-1], [0.5 - s / 2, 0.5 - s / 2, 0.5 + s / 2, 0.5 + s / 2],
                             atol=1e-6)
  assert boxes.min() < 0 and boxes.max() > 1  # no clipping (TF clip_window None)


def test_check_names_field():
  with pytest.raises(ValueError, match="min_scale"):
    anchors.AnchorConfig(min_scale=0.0).check()
  with pytest.raises(ValueError, match="max_scale"):
    anchors.AnchorConfig(max_scale=0.1).check()
  with pytest.raises(ValueError, match="aspect_ratios"):
    anchors.AnchorConfig(aspect_ratios=(1.0, -2.0)).check()
  with pytest.raises(ValueError, match="num_layers"):
    anchors.AnchorConfig(num_layers=0).check()
  with pytest.raises(ValueError, match="feature_sizes"):
    anchors.generate((19, 10, 5))


def test_no_heavy_imports():
  code = ("import sys; import mnv2_jax.detection.anchors as a; a.anchors_per_location(); "
          "bad = [m for m in ('jax', 'tensorflow', 'flax') if m in sys.modules]; "
          "assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True)
