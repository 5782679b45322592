"""Complexity accounting against the released checkpoints, the V1 paper, XLA and Table 3."""

import json

import pytest

from mnv2_jax import complexity as C
from mnv2_jax import complexity_cli
from mnv2_jax import spec as S
from mnv2_jax.models import MobileNetV1, MobileNetV2
from mnv2_jax.ops.impl import Impl

# slim README table: (width, resolution) -> (MACs floored to M, params (no BN, 1001 classes) in M)
SLIM_TABLE = {
    (1.4, 224): (582, 6.06), (1.3, 224): (509, 5.34),
    (1.0, 224): (300, 3.47), (1.0, 192): (221, 3.47), (1.0, 160): (154, 3.47),
    (1.0, 128): (99, 3.47), (1.0, 96): (56, 3.47),
    (0.75, 224): (209, 2.61), (0.75, 192): (153, 2.61), (0.75, 160): (107, 2.61),
    (0.75, 128): (69, 2.61), (0.75, 96): (39, 2.61),
    (0.5, 224): (97, 1.95), (0.5, 192): (71, 1.95), (0.5, 160): (50, 1.95),
    (0.5, 128): (32, 1.95), (0.5, 96): (18, 1.95),
    (0.35, 224): (59, 1.66), (0.35, 192): (43, 1.66), (0.35, 160): (30, 1.66),
    (0.35, 128): (20, 1.66), (0.35, 96): (11, 1.66),
}


@pytest.mark.parametrize("width, resolution", sorted(SLIM_TABLE))
def test_released_checkpoint_table(width, resolution):
  c = C.analyze(MobileNetV2(width_multiplier=width, num_classes=1001), resolution)
  mmacs, mparams = SLIM_TABLE[(width, resolution)]
  assert c.mmadds == mmacs
  assert round(c.params_no_bn / 1e6, 2) == mparams


def test_exact_totals_width_1():
  c = C.analyze(MobileNetV2(num_classes=1001), 224)
  assert c.madds == 300_775_552
  assert c.params_no_bn == 3_472_041
  c1000 = C.analyze(MobileNetV2(), 224)
  assert c1000.params == 3_504_872            # torchvision num_params / Keras trainable
  assert c1000.madds == 300_774_272
  assert c1000.params + c1000.bn_statistics == 3_538_984   # Keras total incl. moving stats
  assert c1000.num_shortcuts == 10


def test_per_layer_rows_match_reference_breakdown():
  rows = {r.path: r for r in C.analyze(MobileNetV2(num_classes=1001), 224).rows}
  assert rows["stem/conv"].madds == 10_838_016
  block_2 = sum(r.madds for p, r in rows.items() if p.startswith("block_2/"))
  assert block_2 == 25_740_288
  assert rows["head/conv"].madds == 20_070_400
  assert rows["logits/dense"].madds == 1_281_280
  assert rows["block_2/project"].shortcut_from == "block_1/project"


@pytest.mark.parametrize("width, params", [(0.35, 1_691_208), (0.5, 1_987_224),
                                           (0.75, 2_663_064), (1.3, 5_431_048),
                                           (1.4, 6_156_712)])
def test_keras_param_counts(width, params):
  c = C.analyze(MobileNetV2(width_multiplier=width), 224)
  assert c.params + c.bn_statistics == params


def test_mobilenet_v1_matches_paper():
  c = C.analyze(MobileNetV1(), 224)
  assert c.madds == pytest.approx(569e6, rel=0.01)
  assert c.params_no_bn == pytest.approx(4.2e6, rel=0.01)


@pytest.mark.parametrize("width", [0.35, 1.0])
def test_six_variants_identical_complexity(width):
  counts = set()
  for act in S.BOTTLENECK_ACTIVATIONS:
    for shortcut in S.SHORTCUTS:
      c = C.analyze(MobileNetV2(width_multiplier=width, bottleneck_activation=act,
                                shortcut=shortcut), 160)
      counts.add((c.madds, c.params, c.params_no_bn))
  assert len(counts) == 1


def test_activation_memory_table3():
  # Paper Table 3 (16-bit, kB = 1000 bytes): V2 max 400K (16 ch @ 112), V1 max 1600K.
  v2 = C.analyze(MobileNetV2(), 224)
  assert round(v2.activation_memory_bytes / 1000) == 401
  by_size = {s: (ch, b) for s, ch, b in v2.memory_by_resolution}
  assert by_size[112] == (16, 401_408)
  assert by_size[7] == (320, 31_360)           # Table 3: 320/32
  assert by_size[1] == (1280, 2_560)           # Table 3: 1280/2
  v1 = C.analyze(MobileNetV1(), 224)
  assert v1.activation_memory_bytes == 1_605_632   # 64 ch @ 112 -> "1600K"
  # Shortcuts between expansions force the wide tensors to be materialised.
  exp = C.analyze(MobileNetV2(shortcut="expansion"), 224)
  assert exp.activation_memory_bytes == 144 * 56 * 56 * 2
  assert exp.activation_memory_bytes > 2 * v2.activation_memory_bytes


@pytest.mark.parametrize("model", [MobileNetV2(width_multiplier=0.5, impl=Impl(depthwise="xla")),
                                   MobileNetV2(width_multiplier=0.35, shortcut="none",
                                               impl=Impl(depthwise="xla")),

                                   MobileNetV1(width_multiplier=0.5, impl=Impl(depthwise="xla"))])
def test_analytic_madds_agree_with_xla(model):
  # XLA's cost analysis counts 2 flops per multiply-add of the convolutions and the classifier,
  # plus the element-wise work the MAdds convention excludes: inference batch norm folded to one
  # multiply and one add per element (ops/batchnorm.py: 2 flops = 1 "MAdd"), then the ReLU6
  # clamp, shortcut adds and the pool on top. So XLA/2 - analytic must be 1 to 2 "MAdds" per
  # conv-output element; below 1 would mean XLA counts fewer conv MAdds than the analytic model.
  # Measured: 1.22-1.25 for these three models (1.72-1.86 with flax's BatchNorm, which also
  # subtracts the mean per element).
  resolution = 128
  analytic = C.analyze(model, resolution).madds
  elements = sum(l.output_elements for l in model.spec(resolution).layers if l.op != "dense")
  excess_per_element = (C.xla_madds(model, resolution) - analytic) / elements
  assert 1.0 <= excess_per_element <= 2.0


def test_cli_table_and_json(capsys):
  assert complexity_cli.main(["--width", "0.35", "--resolution", "96"]) == 0
  out = capsys.readouterr().out
  assert "block_16/project" in out and "(11 M, floored)" in out
  assert complexity_cli.main(["--model", "mobilenet_v1", "--json"]) == 0
  data = json.loads(capsys.readouterr().out)
  assert data["mmadds"] == 568 and len(data["rows"]) == 28


def test_cli_bad_input(capsys):
  assert complexity_cli.main(["--width", "0", "--resolution", "96"]) == 2
  assert "width_multiplier" in capsys.readouterr().err
  for argv, needle in ((["--inference_split", "0"], "--inference_split must be integers >= 1"),
                       (["--inference_split", "3"], "must divide every split block's inner"),
                       (["--shortcut", "expansion", "--inference_split", "2"],
                        "cannot be used with shortcut='expansion'")):
    assert complexity_cli.main(argv) == 2
    assert needle in capsys.readouterr().err


def test_cli_eq2_peak_per_group_count(capsys):
  """The printed eq. (2) values are `split_inference_peak_bytes`, and fall as k grows."""
  assert complexity_cli.main(["--inference_split", "1,2,4,8", "--json"]) == 0
  peaks = json.loads(capsys.readouterr().out)["inference_split_peak_bytes"]
  arch = S.from_config({"name": "mobilenet_v2", "width_multiplier": 1.0}, 224, 1000)
  assert peaks == {str(k): C.split_inference_peak_bytes(arch, k) for k in (1, 2, 4, 8)}
  assert peaks["1"] > peaks["2"] > peaks["4"] > peaks["8"]
  assert complexity_cli.main(["--inference_split", "4"]) == 0
  assert "eq. (2) peak     k=4: 2.61 MB" in capsys.readouterr().out


def _hand_count_width_1(k: int, resolution: int = 224, classes: int = 1000) -> tuple[int, int]:
  """MobileNetV2 1.0 MAdds and params counted from the paper's Table 2 alone.

  At width 1.0 every channel count of Table 2 is already a multiple of 8, so no rounding is
  involved: stem 3x3 s2 conv to 32, then (t, c, n, s) rows of inverted residual blocks (1x1
  expand to t*C_in unless t = 1, k x k depthwise with stride s on the first repeat, 1x1 project
  to c), the 1x1 conv to 1280, pooling and a 1280 x classes dense layer with bias. Every conv
  has batch norm (2 params per channel); TF SAME padding gives ceil(size / stride).
  """
  table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]
  size, cin = -(-resolution // 2), 32
  madds, params = size * size * 3 * 3 * 3 * 32, 3 * 3 * 3 * 32 + 2 * 32
  for t, c, n, s in table:
    for i in range(n):
      stride = s if i == 0 else 1
      wide = t * cin
      if t != 1:
        madds += size * size * cin * wide
        params += cin * wide + 2 * wide
      size = -(-size // stride)
      madds += size * size * k * k * wide
      params += k * k * wide + 2 * wide
      madds += size * size * wide * c
      params += wide * c + 2 * c
      cin = c
  madds += size * size * cin * 1280
  params += cin * 1280 + 2 * 1280
  madds += 1280 * classes
  params += 1280 * classes + classes
  return madds, params


@pytest.mark.parametrize("kernel", [3, 5])
def test_cli_depthwise_kernel_exact_against_a_hand_count(kernel, capsys):
  assert complexity_cli.main(["--width", "1.0", "--resolution", "224", "--depthwise_kernel",
                              str(kernel), "--json"]) == 0
  data = json.loads(capsys.readouterr().out)
  assert (data["madds"], data["params"]) == _hand_count_width_1(kernel)
  if kernel == 3:  # The published 1.0/224 figures (1000 classes): 300.8 M MAdds, 3.50 M params.
    assert (data["madds"], data["params"]) == (300_774_272, 3_504_872)
  depthwise = [r for r in data["rows"] if r["op"] == "depthwise"]
  assert len(depthwise) == 17 and all(r["kernel"] == kernel for r in depthwise)


def test_cli_rejects_an_unsupported_depthwise_kernel(capsys):
  with pytest.raises(SystemExit):
    complexity_cli.main(["--depthwise_kernel", "7"])
  assert "--depthwise_kernel: invalid choice: 7 (choose from 3, 5)" in capsys.readouterr().err
