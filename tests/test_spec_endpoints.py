"""`spec`: slim endpoint names and the output-stride (atrous) rule."""

import pytest

from mnv2_jax import ablations
from mnv2_jax import complexity
from mnv2_jax import spec


def _strided(arch):
  return [(l.path, l.stride, l.rate) for l in arch.layers
          if l.op == "depthwise" and (l.stride > 1 or l.rate > 1)]


def test_v2_endpoints_are_slims():
  arch = spec.mobilenet_v2_spec(1.0, 320)
  assert arch.endpoint("layer_1").path == "stem/conv"
  assert arch.endpoint("layer_2").path == "block_0/project"
  e15 = arch.endpoint("layer_15/expansion_output")
  assert (e15.path, e15.out_channels, e15.out_size) == ("block_13/expand", 576, 20)
  e18 = arch.endpoint("layer_18")
  assert (e18.path, e18.out_channels) == ("block_16/project", 320)
  e19 = arch.endpoint("layer_19")
  assert (e19.path, e19.out_channels, e19.out_size) == ("head/conv", 1280, 10)
  with pytest.raises(ValueError, match="endpoints: "):
    arch.endpoint("layer_20")


def test_v1_endpoints():
  arch = spec.mobilenet_v1_spec(1.0, 320)
  e11, e13 = arch.endpoint("Conv2d_11_pointwise"), arch.endpoint("Conv2d_13_pointwise")
  assert (e11.out_channels, e11.out_size, e13.out_channels, e13.out_size) == (512, 20, 1024, 10)


def test_expansion_output_under_expansion_shortcut_receives_the_add():
  """Under shortcut="expansion" layer_15/expansion_output is block_13/expand, the target of
  block_12's wide shortcut: the model returns that layer's output after the add."""
  arch = spec.mobilenet_v2_spec(1.0, 320, shortcut="expansion")
  path = arch.endpoint("layer_15/expansion_output").path
  assert spec.Shortcut("block_12/expand", path) in arch.shortcuts


def test_output_stride_16_follows_slim():
  arch = spec.mobilenet_v2_spec(1.0, 513, output_stride=16)
  assert _strided(arch) == [("block_1/depthwise", 2, 1), ("block_3/depthwise", 2, 1),
                            ("block_6/depthwise", 2, 1), ("block_14/depthwise", 1, 2),
                            ("block_15/depthwise", 1, 2), ("block_16/depthwise", 1, 2)]
  assert arch.layer("block_13/depthwise").stride == 1  # layer_15: stride 1, rate 1
  assert arch.endpoint("layer_18").out_size == 33 and arch.effective_stride == 16


def test_output_stride_8_follows_slim():
  arch = spec.mobilenet_v2_spec(1.0, 513, output_stride=8)
  rates = {l.scope: l.rate for l in arch.layers if l.op == "depthwise"}
  assert arch.layer("block_6/depthwise").stride == 1
  assert [rates[f"block_{i}"] for i in range(6, 17)] == [1] + [2] * 7 + [4] * 3
  assert arch.endpoint("layer_18").out_size == 65


@pytest.mark.parametrize("shortcut", ablations.get("model.shortcut").values)
def test_output_stride_changes_no_parameter_and_every_axis_applies(shortcut):
  base = spec.mobilenet_v2_spec(0.5, 224, shortcut=shortcut, bottleneck_activation="relu6")
  dil = spec.mobilenet_v2_spec(0.5, 224, shortcut=shortcut, bottleneck_activation="relu6",
                               output_stride=8)
  assert complexity.analyze(base).params == complexity.analyze(dil).params
  assert complexity.analyze(dil).madds > complexity.analyze(base).madds
  assert base.shortcuts == dil.shortcuts and dict(dil.axes)["shortcut"] == shortcut


def test_output_stride_32_is_the_natural_network():
  assert (spec.mobilenet_v2_spec(1.0, 224, output_stride=32).layers
          == spec.mobilenet_v2_spec(1.0, 224).layers)


@pytest.mark.parametrize("bad", [64, 12, 0, 1, "16", True])
def test_bad_output_stride(bad):
  with pytest.raises(ValueError, match="output_stride"):
    spec.mobilenet_v2_spec(1.0, 224, output_stride=bad)
  with pytest.raises(ValueError, match="output_stride"):
    spec.mobilenet_v1_spec(1.0, 224, output_stride=bad)


def test_space_to_batch_grid_rounds_up_to_the_rate():
  layer = spec.Layer("aspp1", "conv", "conv", 3, 1, 320, 256, 33, 33, "relu", rate=6)
  assert layer.madds == 33 * 33 * 9 * 320 * 256
  assert layer.madds_space_to_batch == 36 * 36 * 9 * 320 * 256
