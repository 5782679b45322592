"""Params and MAdds of SSDLite / SSD / Mobile DeepLabv3 (`heads_spec`), per part, from the spec.

Counting rules (the classifier's, `mnv2_jax.complexity`): MAdds are conv multiply-accumulates
(H_out * W_out * k^2 * C_in * C_out / groups); batch norm, activations, biases, pooling,
upsampling, anchor decoding and NMS are not counted. Params are kernels + biases + BN gamma /
beta. The backbone is counted up to the last endpoint the head reads (no classifier; for
DeepLab on V2 not even the 1280-channel conv), which is what Tables 5-7 count.

Two MAdds figures: `madds`, the arithmetic of the network as written; and
`madds_space_to_batch`, with every dilated conv counted on TF's space-to-batch grid (output
side rounded up to a multiple of the rate, `spec.Layer.madds_space_to_batch`). Table 7's ASPP
rows (5.8B, 387B) and MobileNetV1's 14.25B are only reproduced by the second; the rows without
ASPP barely differ. docs/dense_heads.md has the table of every row against the paper.

Multi-scale + flip evaluation (Table 7's MF rows) is the sum over the evaluated inputs: each
scale s of a 513 crop runs at DeepLab's `scale_dimension`, int((513 - 1) * s + 1), twice
(original and mirrored); `multi_scale`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mnv2_jax import heads_spec
from mnv2_jax import spec as spec_lib

DEEPLAB_EVAL_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)  # deeplab model_zoo: [0.5:0.25:1.75]

TaskSpec = heads_spec.DetectionSpec | heads_spec.SegmentationSpec


def _params(layer: spec_lib.Layer) -> int:
  return layer.kernel_params + layer.bias_params + layer.bn_params


@dataclasses.dataclass(frozen=True)
class Part:
  params: int
  madds: int
  madds_space_to_batch: int


@dataclasses.dataclass(frozen=True)
class HeadComplexity:
  head: str
  model: str
  width_multiplier: float
  resolution: int
  num_classes: int
  output_stride: int
  params: int
  madds: int
  madds_space_to_batch: int
  parts: dict[str, Part]
  extra: dict[str, Any]   # head-specific facts: anchors, feature sizes, ASPP rates

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def analyze(task: TaskSpec) -> HeadComplexity:
  parts = {name: Part(sum(_params(l) for l in layers), sum(l.madds for l in layers),
                      sum(l.madds_space_to_batch for l in layers))
           for name, layers in task.parts().items()}
  backbone = task.backbone
  if isinstance(task, heads_spec.DetectionSpec):
    extra = {"feature_sizes": list(task.feature_sizes),
             "anchors_per_location": list(task.anchors_per_location),
             "num_anchors": task.num_anchors, "class_slots": task.num_classes + 1,
             "sources": list(task.sources)}
  else:
    extra = {"feature_size": task.logits.out_size, "aspp_rates": list(task.aspp_rates),
             "source": task.source}
  return HeadComplexity(
      head=task.head, model=backbone.model, width_multiplier=backbone.width_multiplier,
      resolution=backbone.resolution, num_classes=task.num_classes,
      output_stride=backbone.effective_stride,
      params=sum(p.params for p in parts.values()), madds=sum(p.madds for p in parts.values()),
      madds_space_to_batch=sum(p.madds_space_to_batch for p in parts.values()),
      parts=parts, extra=extra)


def scale_dimension(size: int, scale: float) -> int:
  """DeepLab's `scale_dimension`: the input side evaluated at `scale` of a `size` crop."""
  return int((size - 1) * scale + 1)


def multi_scale(build, resolution: int, scales=DEEPLAB_EVAL_SCALES, flips: int = 2
                ) -> dict[str, Any]:
  """MAdds of multi-scale (+ flipped) inference: `build(resolution) -> TaskSpec` is analysed
  at every scaled resolution; each runs `flips` times (2: original and mirrored)."""
  runs = []
  for s in scales:
    c = analyze(build(scale_dimension(resolution, s)))
    runs.append({"scale": s, "resolution": c.resolution, "madds": c.madds,
                 "madds_space_to_batch": c.madds_space_to_batch})
  return {"scales": list(scales), "flips": flips, "runs": runs,
          "madds": flips * sum(r["madds"] for r in runs),
          "madds_space_to_batch": flips * sum(r["madds_space_to_batch"] for r in runs)}
