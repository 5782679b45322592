"""SSD anchors exactly as the TF Object Detection API's `ssd_anchor_generator` makes them.

numpy only, no jax / tensorflow import: `mnv2_jax.heads_spec` imports `anchors_per_location` to
size the box and class predictors of a pure-Python architecture spec.

TF semantics followed (tensorflow/models research/object_detection/anchor_generators/
multiple_grid_anchor_generator.py `create_ssd_anchors` + grid_anchor_generator.py
`tile_anchors`; protos/ssd_anchor_generator.proto for the defaults, which are those of
`samples/configs/ssdlite_mobilenet_v2_coco.config`):
- scales: `scale_i = min_scale + (max_scale - min_scale) * i / (num_layers - 1)` for
  i < num_layers, plus a final 1.0 used only for the interpolated scale of the last layer.
- box specs: layer 0 with `reduce_boxes_in_lowest_layer` gets [(0.1, 1.0), (scale_0, 2.0),
  (scale_0, 0.5)]; every other layer gets (scale_i, a) for each aspect ratio a in order, then
  (sqrt(scale_i * scale_{i+1}), interpolated_scale_aspect_ratio) if that ratio is > 0.
- box size: height = scale / sqrt(a) * base_anchor_size, width = scale * sqrt(a) *
  base_anchor_size (normalised coordinates; the image is square so TF's
  `min(im_h, im_w) / im_h` rescaling is 1).
- grid: stride 1/size and offset 0.5/size (TF's defaults when `anchor_strides` /
  `anchor_offsets` are not given), so centres are at (i + 0.5) / size.
- order: layer by layer; inside a layer row-major over the grid (y outer, x inner) and the box
  specs innermost -- the order of the predictors' reshape [H, W, A * k] -> [H * W * A, k].
- boxes are corner (ymin, xmin, ymax, xmax) and not clipped (TF's `clip_window` is None for SSD,
  so border anchors extend outside [0, 1]).
TF computes in float32 inside the graph; we compute in float64 and cast once to float32 (the
values agree to float32 rounding).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class AnchorConfig:
  """`ssd_anchor_generator` fields (defaults: the SSDLite MobileNetV2 COCO config)."""
  num_layers: int = 6
  min_scale: float = 0.2
  max_scale: float = 0.95
  aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
  interpolated_scale_aspect_ratio: float = 1.0
  reduce_boxes_in_lowest_layer: bool = True
  base_anchor_size: float = 1.0

  def check(self) -> "AnchorConfig":
    """Raises ValueError naming the first invalid field; returns self."""
    if not isinstance(self.num_layers, int) or self.num_layers < 1:
      raise ValueError(f"num_layers must be an int >= 1, got {self.num_layers!r}")
    if not 0.0 < self.min_scale <= 1.0:
      raise ValueError(f"min_scale must be in (0, 1], got {self.min_scale!r}")
    if not self.min_scale <= self.max_scale:
      raise ValueError(f"max_scale must be >= min_scale ({self.min_scale}), "
                       f"got {self.max_scale!r}")
    if not self.aspect_ratios or any(not a > 0 for a in self.aspect_ratios):
      raise ValueError(f"aspect_ratios must be a non-empty tuple of positive ratios, "
                       f"got {self.aspect_ratios!r}")
    if self.interpolated_scale_aspect_ratio < 0:
      raise ValueError(f"interpolated_scale_aspect_ratio must be >= 0 (0 = no interpolated "
                       f"box), got {self.interpolated_scale_aspect_ratio!r}")
    if not self.base_anchor_size > 0:
      raise ValueError(f"base_anchor_size must be > 0, got {self.base_anchor_size!r}")
    return self


def scales(cfg: AnchorConfig) -> list[float]:
  """The num_layers + 1 scales (the last, 1.0, only feeds the last interpolated scale)."""
  cfg.check()
  if cfg.num_layers == 1:
    # TF divides by (num_layers - 1); with one layer its list is just [min_scale].
    layer_scales = [cfg.min_scale]
  else:
    layer_scales = [cfg.min_scale + (cfg.max_scale - cfg.min_scale) * i / (cfg.num_layers - 1)
                    for i in range(cfg.num_layers)]
  return layer_scales + [1.0]


def box_specs(cfg: AnchorConfig = AnchorConfig()) -> list[list[tuple[float, float]]]:
  """Per layer, the (scale, aspect_ratio) of each anchor at one grid location, in TF's order."""
  s = scales(cfg)
  specs = []
  for layer in range(cfg.num_layers):
    scale, scale_next = s[layer], s[layer + 1]
    if layer == 0 and cfg.reduce_boxes_in_lowest_layer:
      layer_specs = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
    else:
      layer_specs = [(scale, float(a)) for a in cfg.aspect_ratios]
      if cfg.interpolated_scale_aspect_ratio > 0.0:
        layer_specs.append((math.sqrt(scale * scale_next),
                            float(cfg.interpolated_scale_aspect_ratio)))
    specs.append(layer_specs)
  return specs


def anchors_per_location(cfg: AnchorConfig = AnchorConfig()) -> tuple[int, ...]:
  """Anchors per grid cell of each layer: (3, 6, 6, 6, 6, 6) for the defaults."""
  return tuple(len(layer) for layer in box_specs(cfg))


def num_anchors(feature_sizes: Sequence[int], cfg: AnchorConfig = AnchorConfig()) -> int:
  """Total anchors over square grids of the given sizes (1917 at 300x300, 2034 at 320x320)."""
  per_location = anchors_per_location(cfg)
  _check_sizes(feature_sizes, cfg)
  return sum(int(s) * int(s) * a for s, a in zip(feature_sizes, per_location))


def _check_sizes(feature_sizes: Sequence[int], cfg: AnchorConfig) -> None:
  if len(feature_sizes) != cfg.num_layers:
    raise ValueError(f"feature_sizes needs num_layers={cfg.num_layers} entries, "
                     f"got {tuple(feature_sizes)}")
  if any(int(s) != s or s < 1 for s in feature_sizes):
    raise ValueError(f"feature_sizes must be positive ints, got {tuple(feature_sizes)}")


def _tile(size: int, layer_specs: list[tuple[float, float]], base: float) -> np.ndarray:
  """One layer's [size * size * A, 4] corner anchors (TF `tile_anchors`, square grid)."""
  spec = np.asarray(layer_specs, dtype=np.float64)
  scale, ratio = spec[:, 0], spec[:, 1]
  heights = scale / np.sqrt(ratio) * base  # [A]
  widths = scale * np.sqrt(ratio) * base
  centers = (np.arange(size, dtype=np.float64) + 0.5) / size  # stride 1/size, offset 0.5/size
  yc = np.broadcast_to(centers[:, None, None], (size, size, len(spec)))
  xc = np.broadcast_to(centers[None, :, None], (size, size, len(spec)))
  h = np.broadcast_to(heights, (size, size, len(spec)))
  w = np.broadcast_to(widths, (size, size, len(spec)))
  boxes = np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
  return boxes.reshape(-1, 4)


def generate(feature_sizes: Sequence[int], cfg: AnchorConfig = AnchorConfig()) -> np.ndarray:
  """All anchors, [N, 4] float32 corner boxes (ymin, xmin, ymax, xmax) in [0, 1] image units.

  `feature_sizes[i]` is the side of the (square) grid of layer i, e.g. (19, 10, 5, 3, 2, 1) at
  300x300 or (20, 10, 5, 3, 2, 1) at 320x320.
  """
  specs = box_specs(cfg)
  _check_sizes(feature_sizes, cfg)
  layers = [_tile(int(size), layer_specs, cfg.base_anchor_size)
            for size, layer_specs in zip(feature_sizes, specs)]
  return np.concatenate(layers, axis=0).astype(np.float32)
