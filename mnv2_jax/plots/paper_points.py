"""The 22 released MobileNetV2 checkpoints: the points of the paper's Fig. 5.

Source: tensorflow/models ``research/slim/nets/mobilenet/README.md``, the table "MACs (M) |
Parameters (M) | Top 1 | Top 5 | Mobile CPU (ms) Pixel 1" (copied in
shared/reference/mobilenet_v2.md §1.1). The paper's Fig. 5 plots the 21 rows other than 1.3/224
(§4.5 of the same reference); its points sit at these README values. MACs are
floor(MAdds / 1e6) with a 1001-way classifier; top-1/top-5 are ImageNet validation, percent.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PaperPoint:
  width: float
  resolution: int
  mmadds: int
  params_m: float
  top1: float
  top5: float

  @property
  def in_fig5(self) -> bool:
    """Fig. 5 uses multipliers 0.35-1.0 at all resolutions and 1.4 at 224 (not 1.3)."""
    return self.width != 1.3


RELEASED_CHECKPOINTS = tuple(PaperPoint(*row) for row in (
    (1.4, 224, 582, 6.06, 75.0, 92.5),
    (1.3, 224, 509, 5.34, 74.4, 92.1),
    (1.0, 224, 300, 3.47, 71.8, 91.0),
    (1.0, 192, 221, 3.47, 70.7, 90.1),
    (1.0, 160, 154, 3.47, 68.8, 89.0),
    (1.0, 128, 99, 3.47, 65.3, 86.9),
    (1.0, 96, 56, 3.47, 60.3, 83.2),
    (0.75, 224, 209, 2.61, 69.8, 89.6),
    (0.75, 192, 153, 2.61, 68.7, 88.9),
    (0.75, 160, 107, 2.61, 66.4, 87.3),
    (0.75, 128, 69, 2.61, 63.2, 85.3),
    (0.75, 96, 39, 2.61, 58.8, 81.6),
    (0.5, 224, 97, 1.95, 65.4, 86.4),
    (0.5, 192, 71, 1.95, 63.9, 85.4),
    (0.5, 160, 50, 1.95, 61.0, 83.2),
    (0.5, 128, 32, 1.95, 57.7, 80.8),
    (0.5, 96, 18, 1.95, 51.2, 75.8),
    (0.35, 224, 59, 1.66, 60.3, 82.9),
    (0.35, 192, 43, 1.66, 58.2, 81.2),
    (0.35, 160, 30, 1.66, 55.7, 79.1),
    (0.35, 128, 20, 1.66, 50.8, 75.0),
    (0.35, 96, 11, 1.66, 45.5, 70.4),
))
