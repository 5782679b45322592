"""The architecture spec against the published channel plans, shortcut wiring and errors."""

import itertools

import pytest

from mnv2_jax import spec as S

WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
RESOLUTIONS = (96, 128, 160, 192, 224)


@pytest.mark.parametrize("value, expected", [
    (32 * 0.35, 16), (16 * 0.35, 8), (1280 * 1.4, 1792), (1280 * 1.3, 1664), (32 * 1.4, 48),
    (24 * 1.3, 32), (96 * 0.35, 32), (32, 32), (3, 8)])
def test_make_divisible(value, expected):
  assert S.make_divisible(value, 8) == expected


# Reference §1.3: first conv; stage output widths; last conv.
PLANS = {
    0.35: (16, [8, 8, 16, 24, 32, 56, 112], 1280),
    0.5: (16, [8, 16, 16, 32, 48, 80, 160], 1280),
    0.75: (24, [16, 24, 24, 48, 72, 120, 240], 1280),
    1.0: (32, [16, 24, 32, 64, 96, 160, 320], 1280),
    1.3: (40, [24, 32, 40, 80, 128, 208, 416], 1664),
    1.4: (48, [24, 32, 48, 88, 136, 224, 448], 1792),
}


@pytest.mark.parametrize("width", WIDTHS)
def test_channel_plan(width):
  arch = S.mobilenet_v2_spec(width, 224)
  stem, stages, last = PLANS[width]
  assert arch.layer("stem/conv").out_channels == stem
  assert arch.layer("head/conv").out_channels == last
  projects = [l.out_channels for l in arch.layers if l.name == "project"]
  repeats = [n for _, _, n, _ in S.V2_BLOCKS]
  assert projects == [c for c, n in zip(stages, repeats) for _ in range(n)]


def test_width_1_block_structure():
  arch = S.mobilenet_v2_spec(1.0, 224)
  expands = [l.out_channels for l in arch.layers if l.name == "expand"]
  assert expands == [96, 144, 144, 192, 192, 192, 384, 384, 384, 384, 576, 576, 576, 960, 960,
                     960]
  # Block 0 (t = 1) has no expansion conv.
  assert [l.name for l in arch.layers if l.scope == "block_0"] == ["depthwise", "project"]
  blocks = sorted({l.scope for l in arch.layers if l.scope.startswith("block_")})
  assert len(blocks) == 17
  residual = sorted(int(s.target.split("/")[0].split("_")[1]) for s in arch.shortcuts)
  assert residual == [2, 4, 5, 7, 8, 9, 11, 12, 14, 15]
  # Every shortcut adds the previous block's output onto this block's projection.
  for s in arch.shortcuts:
    target, source = arch.layer(s.target), arch.layer(s.source)
    assert target.name == "project" and target.stride == 1
    assert source.out_channels == target.out_channels and source.out_size == target.out_size
  # Conv op count as in slim's test: 2 * len(spec) - 2 = 36 conv2d (excl. depthwise, incl. logits).
  assert sum(1 for l in arch.layers if l.op != "depthwise") == 36


@pytest.mark.parametrize("resolution, final", [(224, 7), (192, 6), (160, 5), (128, 4), (96, 3)])
def test_final_feature_size(resolution, final):
  assert S.mobilenet_v2_spec(1.0, resolution).feature_size == final


def test_stride_two_sizes_follow_tf_same():
  arch = S.mobilenet_v2_spec(1.0, 225)
  sizes = [l.out_size for l in arch.layers if l.stride == 2]
  assert sizes == [113, 57, 29, 15, 8]


def test_expansion_shortcut_definition_a():
  base = S.mobilenet_v2_spec(1.0, 224)
  exp = S.mobilenet_v2_spec(1.0, 224, shortcut="expansion")
  assert len(exp.shortcuts) == len(base.shortcuts) == 10
  for b, e in zip(base.shortcuts, exp.shortcuts):
    block = int(b.target.split("/")[0].split("_")[1])
    assert e.source == f"block_{block}/expand"
    assert e.target == f"block_{block + 1}/expand"
    src, dst = exp.layer(e.source), exp.layer(e.target)
    assert (src.out_channels, src.out_size) == (dst.out_channels, dst.out_size)
  assert S.mobilenet_v2_spec(1.0, 224, shortcut="none").shortcuts == ()


@pytest.mark.parametrize("width, resolution", list(itertools.product(WIDTHS, RESOLUTIONS)))
def test_all_variants_share_layers(width, resolution):
  specs = [S.mobilenet_v2_spec(width, resolution, bottleneck_activation=a, shortcut=s)
           for a in S.BOTTLENECK_ACTIVATIONS for s in S.SHORTCUTS]
  geometry = {tuple((l.path, l.kernel, l.stride, l.in_channels, l.out_channels, l.out_size)
                    for l in s.layers) for s in specs}
  assert len(geometry) == 1


def test_relu6_bottleneck_only_changes_projection():
  lin = S.mobilenet_v2_spec(1.0, 224)
  relu = S.mobilenet_v2_spec(1.0, 224, bottleneck_activation="relu6")
  changed = [a.path for a, b in zip(lin.layers, relu.layers) if a.activation != b.activation]
  assert changed == [l.path for l in lin.layers if l.name == "project"]
  assert all(l.activation == "relu6" for l in relu.layers if l.name == "project")


@pytest.mark.parametrize("kwargs, field", [
    (dict(bottleneck_activation="relu"), "bottleneck_activation"),
    (dict(shortcut="dense"), "shortcut"),
    (dict(width_multiplier=0.0), "width_multiplier"),
    (dict(width_multiplier=-1.0), "width_multiplier"),
    (dict(resolution=31), "resolution"),
    (dict(num_classes=0), "num_classes"),
    (dict(expansion_factor=0.5), "expansion_factor"),
    (dict(expansion_factor=1, shortcut="expansion"), "shortcut='expansion' cannot be wired"),
])
def test_bad_input_names_the_field(kwargs, field):
  with pytest.raises(ValueError, match=field):
    S.mobilenet_v2_spec(**kwargs)


def test_error_lists_allowed_values():
  with pytest.raises(ValueError, match="'bottleneck', 'expansion', 'none'"):
    S.mobilenet_v2_spec(shortcut="between")


def test_mobilenet_v1_plan():
  arch = S.mobilenet_v1_spec(1.0, 224)
  pointwise = [l.out_channels for l in arch.layers if l.name == "pointwise"]
  assert pointwise == [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
  assert arch.feature_size == 7 and arch.shortcuts == ()
  assert [l.out_channels for l in S.mobilenet_v1_spec(0.25, 224).layers][:3] == [8, 8, 16]
