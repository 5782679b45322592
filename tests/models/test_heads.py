"""SSDLite / DeepLabv3 modules: they build exactly the layers `heads_spec` describes.

Parameter counts are checked against `heads_complexity` (the spec walk that reproduces Tables
5-7), output shapes against the spec's anchors and the input size, and the backbone's
endpoints against the spec's endpoint names. A training step through dilated layers (OS 16
with ASPP) runs in tests/test_train_dense.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnv2_jax import heads_complexity
from mnv2_jax import heads_spec
from mnv2_jax.models import MobileNetV1, MobileNetV2
from mnv2_jax.models import heads
from mnv2_jax.ops.impl import Impl

XLA = Impl(depthwise="xla", batchnorm="xla", pointwise="dot")


def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _init_shapes(model, resolution):
  x = jnp.zeros((2, resolution, resolution, 3))
  return jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))


@pytest.mark.parametrize("backbone,head", [
    (MobileNetV2(width_multiplier=1.0), "ssdlite"),
    (MobileNetV2(width_multiplier=0.35, shortcut="expansion", bottleneck_activation="relu6"),
     "ssdlite"),
    (MobileNetV2(width_multiplier=0.5), "ssd"),
    (MobileNetV1(width_multiplier=1.0), "ssdlite")])
def test_detector_params_and_outputs_follow_the_spec(backbone, head):
  model = heads.SSDLite(backbone=backbone, num_classes=80, head=head)
  variables = _init_shapes(model, 320)
  task = model.task(320)
  assert _count(variables["params"]) == heads_complexity.analyze(task).params
  x = jnp.zeros((2, 320, 320, 3))
  boxes, classes = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  assert boxes.shape == (2, 2034, 4) and classes.shape == (2, 2034, 81)
  assert "logits" not in variables["params"]["backbone"]


def test_ssdlite_table6_params_from_the_module():
  """The module itself (not only the spec) has Table 6's 4.3M parameters at 80 classes."""
  model = heads.SSDLite(backbone=MobileNetV2(), num_classes=80)
  assert round(_count(_init_shapes(model, 320)["params"]) / 1e6, 1) == 4.3


@pytest.mark.parametrize("output_stride,aspp", [(16, False), (16, True), (8, True)])
def test_deeplab_params_and_output_shape(output_stride, aspp):
  model = heads.DeepLabV3(backbone=MobileNetV2(output_stride=output_stride), num_classes=21,
                          aspp=aspp)
  variables = _init_shapes(model, 65)
  assert _count(variables["params"]) == heads_complexity.analyze(model.task(65)).params
  assert "head" not in variables["params"]["backbone"]  # DeepLab stops at layer_18
  x = jnp.zeros((2, 65, 65, 3))
  out = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  assert out.shape == (2, 65, 65, 21)


def test_output_stride_keeps_parameters_and_changes_features():
  x = jax.random.uniform(jax.random.key(3), (1, 64, 64, 3))
  natural = MobileNetV2(width_multiplier=0.35, impl=XLA)
  dilated = MobileNetV2(width_multiplier=0.35, impl=XLA, output_stride=8)
  variables = jax.jit(lambda x: natural.init(jax.random.key(0), x, train=False))(x)
  names = ("layer_7", "layer_18")
  # Under jit: op by op, the test took 23 s here instead of 16 s.
  a = jax.jit(lambda v: natural.apply(v, x, train=False, endpoints=names))(variables)
  b = jax.jit(lambda v: dilated.apply(v, x, train=False, endpoints=names))(variables)
  assert a["layer_18"].shape == (1, 2, 2, 112) and b["layer_18"].shape == (1, 8, 8, 112)
  # Same weights: the dilated net's first strided layers are identical up to stride 8.
  np.testing.assert_allclose(a["layer_7"], b["layer_7"], rtol=1e-5, atol=1e-5)


def test_bad_head_settings_are_rejected_at_construction():
  with pytest.raises(ValueError, match="output_stride"):
    heads.SSDLite(backbone=MobileNetV2(output_stride=16), num_classes=80)
  with pytest.raises(ValueError, match="output_stride must be one of"):
    heads.DeepLabV3(backbone=MobileNetV2(), num_classes=21)
  with pytest.raises(ValueError, match="aspp_rates"):
    heads.DeepLabV3(backbone=MobileNetV2(output_stride=16), num_classes=21, aspp=True,
                    aspp_rates=(12, 24, 36))
  with pytest.raises(ValueError, match="num_classes"):
    heads.SSDLite(backbone=MobileNetV2(), num_classes=0)
  with pytest.raises(ValueError, match="head must be one of"):
    heads.SSDLite(backbone=MobileNetV2(), num_classes=3, head="yolo")
