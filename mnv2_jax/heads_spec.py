"""The dense-prediction systems of the paper (§6.2, §6.3) as pure-Python specs over `spec`.

The backbone is `spec.from_config(...)` itself (every ablation axis applies), truncated at the
endpoints a head reads; the head layers are more `spec.Layer`s, so `mnv2_jax.complexity` counts
them with the same rules and `mnv2_jax.models.heads` builds them by walking these specs.

**SSDLite** (`detection_spec(head="ssdlite")`; tensorflow/models `ssd_mobilenet_v2_feature_
extractor` + `feature_map_generators` + the convolutional box predictor, see
shared/reference/heads_memory_latency.md §2):
- feature maps: `layer_15/expansion_output` (OS 16) and `layer_19` (OS 32) of MobileNetV2
  (`Conv2d_11_pointwise` / `Conv2d_13_pointwise` of MobileNetV1), then four extra layers of depth
  512 / 256 / 256 / 128, each 1x1 to half depth -> 3x3 depthwise stride 2 -> 1x1, every conv
  with BN + ReLU6 and no bias. Depths are `max(int(d * width_multiplier), 16)` (TF's
  `depth_fn` with `min_depth=16`).
- predictors, one box and one class head per map: 3x3 depthwise (BN + ReLU6) -> 1x1 with bias
  to A * 4 box codes and A * (num_classes + 1) class logits (the extra slot is background);
  A = `detection.anchors.anchors_per_location` (3 on the first map, 6 on the others).
`head="ssd"` is the same detector with regular convolutions (Table 5's SSD row): the extra
layers' depthwise + 1x1 become one 3x3 stride-2 conv, and each predictor is one 3x3 conv with
bias (no BN).

**Mobile DeepLabv3** (`segmentation_spec`; tensorflow/models `deeplab/model.py`, §3 of the
reference): the backbone's `layer_18` (320 channels, "MNet V2*"; `Conv2d_13_pointwise` for V1)
at output stride 16 or 8; an image-pooling branch (global average pool -> 1x1 -> bilinear
upsample) and a 1x1 branch (`aspp0`), optionally ASPP: three 3x3 convs at rates (6, 12, 18) at
OS 16 or (12, 24, 36) at OS 8 (regular convs, as the paper's counts require; separable is an
option); concat -> 1x1 projection -> dropout -> 1x1 logits with bias; the head's convs have BN
+ ReLU and depth 256. Logits are bilinearly upsampled to the input by the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from mnv2_jax import spec as spec_lib

DETECTION_HEADS = ("ssdlite", "ssd")
SEGMENTATION_HEADS = ("deeplabv3",)
HEADS = DETECTION_HEADS + SEGMENTATION_HEADS

# Feature endpoints a head reads, per backbone (slim / tensorflow/models names).
SSD_SOURCES = {"mobilenet_v2": ("layer_15/expansion_output", "layer_19"),
               "mobilenet_v1": ("Conv2d_11_pointwise", "Conv2d_13_pointwise")}
SSD_EXTRA_DEPTHS = (512, 256, 256, 128)
SSD_MIN_DEPTH = 16
DEEPLAB_SOURCE = {"mobilenet_v2": "layer_18", "mobilenet_v1": "Conv2d_13_pointwise"}
DEEPLAB_DEPTH = 256
ASPP_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}
DEEPLAB_OUTPUT_STRIDES = tuple(ASPP_RATES)
DEEPLAB_OUTPUT_STRIDE = 16  # the default (Table 7's "MNet V2*" row, model_zoo's OS16)


def check_head(head: str) -> str:
  if head not in HEADS:
    raise ValueError(f"head must be one of {HEADS}, got {head!r}")
  return head


@dataclasses.dataclass(frozen=True)
class DetectionSpec:
  """SSD / SSDLite over a backbone spec. Feature map i is read by `box_heads[i]` and
  `class_heads[i]`; maps 0 and 1 are backbone endpoints, maps 2.. the outputs of `extras`."""
  head: str
  backbone: spec_lib.ArchSpec
  sources: tuple[str, ...]
  extras: tuple[tuple[spec_lib.Layer, ...], ...]
  box_heads: tuple[tuple[spec_lib.Layer, ...], ...]
  class_heads: tuple[tuple[spec_lib.Layer, ...], ...]
  anchors_per_location: tuple[int, ...]
  num_classes: int   # object classes; the class heads have num_classes + 1 slots

  @property
  def backbone_layers(self) -> tuple[spec_lib.Layer, ...]:
    last = self.backbone.endpoint(self.sources[-1]).path
    return self.backbone.layers_through(last)

  @property
  def feature_sizes(self) -> tuple[int, ...]:
    return tuple(h[0].in_size for h in self.box_heads)

  @property
  def num_anchors(self) -> int:
    return sum(s * s * a for s, a in zip(self.feature_sizes, self.anchors_per_location))

  def parts(self) -> dict[str, tuple[spec_lib.Layer, ...]]:
    """The layers of each part, for the per-part complexity breakdown."""
    return {"backbone": self.backbone_layers,
            "extras": tuple(l for e in self.extras for l in e),
            "box_heads": tuple(l for h in self.box_heads for l in h),
            "class_heads": tuple(l for h in self.class_heads for l in h)}


@dataclasses.dataclass(frozen=True)
class SegmentationSpec:
  """Mobile DeepLabv3 over a backbone spec (module docstring)."""
  head: str
  backbone: spec_lib.ArchSpec
  source: str
  image_pool: spec_lib.Layer
  aspp0: spec_lib.Layer
  aspp: tuple[tuple[spec_lib.Layer, ...], ...]   # the atrous branches (empty without ASPP)
  projection: spec_lib.Layer
  logits: spec_lib.Layer
  num_classes: int

  @property
  def backbone_layers(self) -> tuple[spec_lib.Layer, ...]:
    return self.backbone.layers_through(self.backbone.endpoint(self.source).path)

  @property
  def aspp_rates(self) -> tuple[int, ...]:
    return tuple(branch[0].rate for branch in self.aspp)

  def parts(self) -> dict[str, tuple[spec_lib.Layer, ...]]:
    return {"backbone": self.backbone_layers,
            "aspp": (self.image_pool, self.aspp0, *(l for b in self.aspp for l in b),
                     self.projection),
            "logits": (self.logits,)}


def _layer(scope, name, op, kernel, stride, c_in, c_out, size, activation, *, batch_norm=True,
           bias=False, rate=1) -> spec_lib.Layer:
  out = -(-size // stride)
  return spec_lib.Layer(scope, name, op, kernel, stride, c_in, c_out, size, out, activation,
                        batch_norm, bias, rate)


def _default_anchors(num_maps: int) -> tuple[int, ...]:
  from mnv2_jax.detection import anchors  # pylint: disable=g-import-not-at-top (numpy only)
  config = anchors.AnchorConfig(num_layers=num_maps)
  return tuple(anchors.anchors_per_location(config))


def detection_spec(backbone: spec_lib.ArchSpec, num_classes: int, *, head: str = "ssdlite",
                   anchors_per_location: tuple[int, ...] | None = None) -> DetectionSpec:
  """SSDLite (or regular SSD) over `backbone` (natural output stride) for `num_classes`
  object classes (module docstring)."""
  check_head(head)
  if head not in DETECTION_HEADS:
    raise ValueError(f"detection head must be one of {DETECTION_HEADS}, got {head!r}")
  if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
    raise ValueError(f"num_classes must be a positive integer (object classes; background is "
                     f"added), got {num_classes!r}")
  if backbone.output_stride not in (None, 32):
    raise ValueError(f"output_stride must be None (32) for detection: SSDLite reads the "
                     f"backbone at strides 16 and 32, got {backbone.output_stride!r}")
  sources = SSD_SOURCES[backbone.model]
  maps = [backbone.endpoint(name) for name in sources]
  num_maps = len(maps) + len(SSD_EXTRA_DEPTHS)
  per_location = anchors_per_location or _default_anchors(num_maps)
  if len(per_location) != num_maps:
    raise ValueError(f"anchors_per_location needs {num_maps} entries (one per feature map), "
                     f"got {per_location!r}")
  depth = lambda d: max(int(d * backbone.width_multiplier), SSD_MIN_DEPTH)
  shapes = [(m.out_size, m.out_channels) for m in maps]
  extras = []
  size, channels = shapes[-1]
  for i, d in enumerate(SSD_EXTRA_DEPTHS):
    scope, half, full = f"extra_{i}", depth(d / 2), depth(d)
    block = [_layer(scope, "reduce", "conv", 1, 1, channels, half, size, "relu6")]
    if head == "ssdlite":
      block += [_layer(scope, "depthwise", "depthwise", 3, 2, half, half, size, "relu6"),
                _layer(scope, "expand", "conv", 1, 1, half, full, -(-size // 2), "relu6")]
    else:
      block.append(_layer(scope, "conv", "conv", 3, 2, half, full, size, "relu6"))
    extras.append(tuple(block))
    size, channels = block[-1].out_size, full
    shapes.append((size, channels))
  box_heads, class_heads = [], []
  for i, ((size, channels), a) in enumerate(zip(shapes, per_location)):
    for heads, kind, width in ((box_heads, "box", 4), (class_heads, "class", num_classes + 1)):
      scope = f"{kind}_{i}"
      if head == "ssdlite":
        layers = (_layer(scope, "depthwise", "depthwise", 3, 1, channels, channels, size,
                         "relu6"),
                  _layer(scope, "predict", "conv", 1, 1, channels, a * width, size, "linear",
                         batch_norm=False, bias=True))
      else:
        layers = (_layer(scope, "predict", "conv", 3, 1, channels, a * width, size, "linear",
                         batch_norm=False, bias=True),)
      heads.append(layers)
  return DetectionSpec(head, backbone, sources, tuple(extras), tuple(box_heads),
                       tuple(class_heads), tuple(per_location), num_classes)


def segmentation_spec(backbone: spec_lib.ArchSpec, num_classes: int, *, aspp: bool = False,
                      aspp_rates: tuple[int, ...] | None = None,
                      separable_aspp: bool = False) -> SegmentationSpec:
  """Mobile DeepLabv3 over `backbone`, which must be built at output stride 16 or 8;
  `aspp_rates` defaults to the paper's rates for that stride and must match it."""
  if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
    raise ValueError(f"num_classes must be an integer >= 2 (VOC: 21, background included), "
                     f"got {num_classes!r}")
  stride = backbone.output_stride
  if stride not in ASPP_RATES:
    raise ValueError(f"output_stride must be one of {DEEPLAB_OUTPUT_STRIDES} for deeplabv3, "
                     f"got {stride!r}")
  if not aspp and aspp_rates:
    raise ValueError(f"aspp_rates={tuple(aspp_rates)!r} given with aspp=False")
  rates = tuple(aspp_rates) if aspp_rates else (ASPP_RATES[stride] if aspp else ())
  if aspp and rates != ASPP_RATES[stride]:
    allowed = ", ".join(f"{r} at output_stride={s}" for s, r in ASPP_RATES.items())
    raise ValueError(f"aspp_rates {rates} do not fit output_stride={stride}: the paper's "
                     f"rates are {allowed}")
  feature = backbone.endpoint(DEEPLAB_SOURCE[backbone.model])
  size, c, d = feature.out_size, feature.out_channels, DEEPLAB_DEPTH
  pool = _layer("image_pooling", "conv", "conv", 1, 1, c, d, 1, "relu")
  aspp0 = _layer("aspp0", "conv", "conv", 1, 1, c, d, size, "relu")
  branches = []
  for i, rate in enumerate(rates):
    scope = f"aspp{i + 1}"
    if separable_aspp:
      branches.append((
          _layer(scope, "depthwise", "depthwise", 3, 1, c, c, size, "relu", rate=rate),
          _layer(scope, "pointwise", "conv", 1, 1, c, d, size, "relu")))
    else:
      branches.append((_layer(scope, "conv", "conv", 3, 1, c, d, size, "relu", rate=rate),))
  concat = d * (2 + len(rates))
  projection = _layer("concat_projection", "conv", "conv", 1, 1, concat, d, size, "relu")
  logits = _layer("logits", "conv", "conv", 1, 1, d, num_classes, size, "linear",
                  batch_norm=False, bias=True)
  return SegmentationSpec("deeplabv3", backbone, DEEPLAB_SOURCE[backbone.model], pool, aspp0,
                          tuple(branches), projection, logits, num_classes)


def from_config(model: Mapping[str, Any], head: Mapping[str, Any], resolution: int,
                num_classes: int) -> DetectionSpec | SegmentationSpec:
  """The spec of `config.model` + `config.head` (name, output_stride, aspp, ...)."""
  name = check_head(head["name"])
  if name in DETECTION_HEADS:
    backbone = spec_lib.from_config(model, resolution, 1)
    return detection_spec(backbone, num_classes, head=name)
  stride = head.get("output_stride", DEEPLAB_OUTPUT_STRIDE)
  if stride not in ASPP_RATES:
    raise ValueError(f"head.output_stride must be one of {DEEPLAB_OUTPUT_STRIDES} for "
                     f"deeplabv3, got {stride!r}")
  backbone = spec_lib.from_config(model, resolution, 1, output_stride=stride)
  return segmentation_spec(backbone, num_classes, aspp=bool(head.get("aspp", False)),
                           aspp_rates=tuple(head.get("aspp_rates") or ()) or None,
                           separable_aspp=bool(head.get("separable_aspp", False)))
