"""SSDLite detection and Mobile DeepLabv3 segmentation as Flax modules over a MobileNet backbone.

Both walk a `heads_spec` task spec, built from the backbone module's own spec at the input's
resolution, so every layer's shape comes from the one pure-Python description and
`heads_complexity` counts exactly what runs here (tests/models/test_heads.py checks the
parameter count against it).

Usage::

    backbone = MobileNetV2(width_multiplier=1.0, shortcut="expansion")
    det = SSDLite(backbone=backbone, num_classes=80)           # 81 class slots per anchor
    box_codes, class_logits = det.apply(variables, images, train=False)   # [B, N, 4], [B, N, 81]
    seg = DeepLabV3(backbone=MobileNetV2(output_stride=16), num_classes=21, aspp=False)
    logits = seg.apply(variables, images, train=False)          # [B, H, W, 21], input size

Parameters: the backbone's under `backbone/<scope>/...` (the classifier layout, without the
layers past the last endpoint read), head layers under `<scope>_<name>/{conv,bn}` (e.g.
`extra_0_depthwise/conv/kernel`, `class_2_predict/bias`).

Upsampling: bilinear with TF1's `align_corners=True`, as DeepLab's
(`segmentation.loss.upsample_logits`).

Batch norm: the backbone's semantics (`models.layers`: global-batch statistics in training,
running averages at inference), in the head too. The head uses the backbone's momentum; its
epsilon is the backbone's for SSDLite (tensorflow/models uses 1e-3 throughout) and
`head_bn_epsilon` (1e-5, deeplab/model.py) for DeepLab. Outputs are float32.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from mnv2_jax import heads_spec
from mnv2_jax import spec as spec_lib
from mnv2_jax.models import layers
from mnv2_jax.models import mobilenet
from mnv2_jax.segmentation import loss as seg_loss


def _numerics(backbone: mobilenet._MobileNet, epsilon: float | None = None) -> layers.Numerics:
  dtype = mobilenet._resolve_dtype(backbone.dtype)  # pylint: disable=protected-access
  return layers.Numerics(dtype, backbone.bn_momentum,
                         backbone.bn_epsilon if epsilon is None else epsilon,
                         backbone.kernel_init, backbone.impl.resolve(dtype=dtype))


class _Predict(nn.Module):
  """A `spec.Layer` without batch norm: conv + bias (the predictors and the logits)."""
  layer: spec_lib.Layer
  numerics: layers.Numerics

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = layers.Conv(self.layer, self.numerics, name="conv")(x)
    bias = self.param("bias", nn.initializers.zeros, (self.layer.out_channels,), jnp.float32)
    return y + bias.astype(y.dtype)


def _apply(layer: spec_lib.Layer, numerics: layers.Numerics, x: jax.Array, train: bool):
  if layer.batch_norm:
    return layers.ConvBNAct(layer, numerics, name=f"{layer.scope}_{layer.name}")(x, train=train)
  return _Predict(layer, numerics, name=f"{layer.scope}_{layer.name}")(x)


def _check_image(x: jax.Array) -> None:
  if x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(f"images must be NHWC with 3 channels, got shape {x.shape}")
  if x.shape[1] != x.shape[2]:
    raise ValueError(f"dense heads need square inputs (the spec is square), got "
                     f"{x.shape[1]}x{x.shape[2]}")


class SSDLite(nn.Module):
  """SSDLite (or regular SSD, `head="ssd"`) over `backbone` (`heads_spec.detection_spec`).

  Attributes:
    backbone: a `MobileNetV2` / `MobileNetV1` (its width, ablation axes, dtype, impl, BN
      settings); its classifier fields are unused. Natural output stride.
    num_classes: object classes; the class predictors add the background slot 0.
    head: "ssdlite" (paper) or "ssd" (regular 3x3 convs, Table 5).
  Returns (box_codes [B, N, 4], class_logits [B, N, num_classes + 1]), float32, anchors in
  `detection.anchors.generate` order (per map, per cell row-major, per anchor).
  """
  backbone: mobilenet._MobileNet
  num_classes: int = 90
  head: str = "ssdlite"

  def __post_init__(self):
    heads_spec.detection_spec(self.backbone.spec(320), self.num_classes, head=self.head)
    super().__post_init__()

  def task(self, resolution: int) -> heads_spec.DetectionSpec:
    return heads_spec.detection_spec(self.backbone.spec(resolution), self.num_classes,
                                     head=self.head)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> tuple[jax.Array, jax.Array]:
    _check_image(x)
    task = self.task(x.shape[1])
    numerics = _numerics(self.backbone)
    features = self.backbone(x, train=train, endpoints=task.sources)
    maps = [features[name] for name in task.sources]
    y = maps[-1]
    for block in task.extras:
      for layer in block:
        y = _apply(layer, numerics, y, train)
      maps.append(y)
    boxes, classes = [], []
    for fmap, box_head, class_head, a in zip(maps, task.box_heads, task.class_heads,
                                             task.anchors_per_location):
      for head, width, out in ((box_head, 4, boxes), (class_head, self.num_classes + 1,
                                                      classes)):
        y = fmap
        for layer in head:
          y = _apply(layer, numerics, y, train)
        out.append(y.reshape(y.shape[0], -1, width))   # (h, w, a * width) -> (h * w * a, width)
    return (jnp.concatenate(boxes, 1).astype(jnp.float32),
            jnp.concatenate(classes, 1).astype(jnp.float32))


class DeepLabV3(nn.Module):
  """Mobile DeepLabv3 over `backbone`, which carries the output stride (16 or 8).

  Attributes:
    backbone: a `MobileNetV2(output_stride=16 | 8, ...)` (or V1).
    num_classes: classes including background (21 for VOC).
    aspp / aspp_rates / separable_aspp: `heads_spec.segmentation_spec`.
    dropout_rate: before the logits (deeplab: keep probability 0.9).
    head_bn_epsilon: the head's batch-norm epsilon (deeplab: 1e-5).
  Returns logits [B, H, W, num_classes] at the input size (bilinear, align_corners), float32.
  """
  backbone: mobilenet._MobileNet
  num_classes: int = 21
  aspp: bool = False
  aspp_rates: tuple[int, ...] = ()
  separable_aspp: bool = False
  dropout_rate: float = 0.1
  head_bn_epsilon: float = 1e-5

  def __post_init__(self):
    self.task(321)
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
    super().__post_init__()

  def task(self, resolution: int) -> heads_spec.SegmentationSpec:
    return heads_spec.segmentation_spec(
        self.backbone.spec(resolution), self.num_classes, aspp=self.aspp,
        aspp_rates=tuple(self.aspp_rates) or None, separable_aspp=self.separable_aspp)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    _check_image(x)
    task = self.task(x.shape[1])
    numerics = _numerics(self.backbone, self.head_bn_epsilon)
    f = self.backbone(x, train=train, endpoints=(task.source,))[task.source]
    f = f.astype(numerics.dtype)
    pooled = jnp.mean(f, axis=(1, 2), keepdims=True)
    pooled = _apply(task.image_pool, numerics, pooled, train)
    branches = [jnp.broadcast_to(pooled, f.shape[:3] + pooled.shape[-1:]),  # 1x1 -> bilinear
                _apply(task.aspp0, numerics, f, train)]
    for branch in task.aspp:
      y = f
      for layer in branch:
        y = _apply(layer, numerics, y, train)
      branches.append(y)
    y = _apply(task.projection, numerics, jnp.concatenate(branches, -1), train)
    y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    logits = _apply(task.logits, numerics, y, train)
    return seg_loss.upsample_logits(logits, x.shape[1:3], align_corners=True)


HEAD_MODELS = {"ssdlite": SSDLite, "ssd": SSDLite, "deeplabv3": DeepLabV3}
