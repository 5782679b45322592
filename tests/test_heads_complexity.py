"""Tables 5-7 of the paper from the spec walk (`heads_spec` + `heads_complexity`).

Each row states its rule: `_printed(value, digits) == paper` is rounding to the paper's printed
precision (nearest); a tolerance is explicit where only a looser match holds. Counting: 80
classes + background for detection at 320x320, 21 classes at 513x513 for segmentation; params
include BN gamma/beta; the backbone is counted to the last endpoint the head reads.
Rows that do not reproduce are asserted as *not* reproducing, with our value, so a change in
the counting that "fixes" them is noticed (docs/dense_heads.md explains each).
"""

import json

import pytest

from mnv2_jax import complexity_cli
from mnv2_jax import heads_complexity as hc
from mnv2_jax import heads_spec
from mnv2_jax import spec


def _det(model="mobilenet_v2", head="ssdlite", resolution=320, num_classes=80):
  backbone = spec.SPECS[model](1.0, resolution, 1)
  return hc.analyze(heads_spec.detection_spec(backbone, num_classes, head=head))


def _seg(model="mobilenet_v2", output_stride=16, aspp=False, resolution=513):
  backbone = spec.SPECS[model](1.0, resolution, 1, output_stride=output_stride)
  return hc.analyze(heads_spec.segmentation_spec(backbone, 21, aspp=aspp))


def _mf(model="mobilenet_v2", aspp=False):
  def build(resolution):
    backbone = spec.SPECS[model](1.0, resolution, 1, output_stride=8)
    return heads_spec.segmentation_spec(backbone, 21, aspp=aspp)
  return hc.multi_scale(build, 513)


def _printed(value, digits):
  return round(value, digits)


def _head_part(c, key):
  return sum(getattr(c.parts[p], key) for p in ("extras", "box_heads", "class_heads"))


# ---- Table 6 (totals: backbone + extras + heads; nearest at the printed precision) ----------

def test_table6_mnv2_ssdlite():
  c = _det()
  assert (c.params, c.madds) == (4_337_013, 788_830_144)
  assert _printed(c.params / 1e6, 1) == 4.3 and _printed(c.madds / 1e9, 1) == 0.8


def test_table6_mnv1_ssdlite():
  c = _det("mobilenet_v1")
  assert _printed(c.params / 1e6, 1) == 5.1 and _printed(c.madds / 1e9, 1) == 1.3


def test_table6_needs_320_and_81_slots():
  """The rules are needed: at 300 the MAdds print 0.7B; with 91 slots the params 4.5M."""
  assert _printed(_det(resolution=300).madds / 1e9, 1) == 0.7
  assert _printed(_det(num_classes=90).params / 1e6, 1) == 4.5


def test_anchor_counts():
  assert _det().extra["num_anchors"] == 2034
  assert _det(resolution=300).extra["num_anchors"] == 1917
  assert _det().extra["anchors_per_location"] == [3, 6, 6, 6, 6, 6]
  assert _det().extra["feature_sizes"] == [20, 10, 5, 3, 2, 1]


# ---- Table 5 (the SSD part only: extras + predictors) --------------------------------------

def test_table5_ssd_row():
  c = _det(head="ssd")
  assert _printed(_head_part(c, "params") / 1e6, 1) == 14.8
  # 1.259B is printed 1.25B: it matches by truncation, not by rounding (1.26).
  madds = _head_part(c, "madds") / 1e9
  assert int(madds * 100) / 100 == 1.25 and _printed(madds, 2) == 1.26


def test_table5_ssdlite_params_reproduce_but_madds_do_not():
  c = _det()
  assert _printed(_head_part(c, "params") / 1e6, 1) == 2.1
  madds = _head_part(c, "madds") / 1e9
  assert _printed(madds, 3) == 0.178   # the paper prints 0.35B: ~2x; does not reproduce
  assert abs(madds - 0.35) > 0.15


# ---- Table 7 (MNet V2*: layer_18 + DeepLabv3 head, 513x513, 21 classes) ---------------------

def test_table7_v2_os16_no_aspp():
  c = _seg()
  assert _printed(c.params / 1e6, 2) == 2.11
  # 2.741B (2.742B on the space-to-batch grid) against 2.75B printed: within 0.4%.
  assert c.madds == 2_740_709_056
  assert abs(c.madds_space_to_batch / 2.75e9 - 1) < 0.004


def test_table7_v2_os16_aspp_needs_the_space_to_batch_grid():
  c = _seg(aspp=True)
  assert _printed(c.params / 1e6, 2) == 4.52
  assert _printed(c.madds_space_to_batch / 1e9, 1) == 5.8
  assert _printed(c.madds / 1e9, 1) == 5.4   # plain count: does not reproduce


def test_table7_v2_os8_multi_scale():
  mf = _mf()
  # 152.53B (grid) against 152.6B printed: within 0.05%.
  assert abs(mf["madds_space_to_batch"] / 152.6e9 - 1) < 5e-4
  mf_aspp = _mf(aspp=True)
  assert _printed(mf_aspp["madds_space_to_batch"] / 1e9, 0) == 387
  assert [r["resolution"] for r in mf["runs"]] == [257, 385, 513, 641, 769, 897]


def test_table7_params_do_not_depend_on_output_stride():
  assert _seg(output_stride=8).params == _seg().params
  assert _seg(output_stride=8, aspp=True).params == _seg(aspp=True).params


def test_table7_v1_rows():
  c = _seg("mobilenet_v1", aspp=True)
  assert _printed(c.params / 1e6, 2) == 11.15
  # 14.23B (grid) against 14.25B printed: 0.2% low; does not reproduce at the printed precision.
  assert _printed(c.madds_space_to_batch / 1e9, 2) == 14.23
  mf = _mf("mobilenet_v1", aspp=True)
  assert _printed(mf["madds_space_to_batch"] / 1e9, 1) == 990.8   # paper: 941.9B (5% lower)


# ---- CLI -------------------------------------------------------------------------------------

def test_cli_head_json(capsys):
  assert complexity_cli.main(["--head", "ssdlite", "--resolution", "320", "--num_classes", "80",
                              "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  assert (out["params"], out["madds"]) == (4_337_013, 788_830_144)
  assert set(out["parts"]) == {"backbone", "extras", "box_heads", "class_heads"}
  assert complexity_cli.main(["--head", "deeplabv3", "--resolution", "513", "--output_stride",
                              "16", "--aspp", "--num_classes", "21", "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out["params"] == 4_523_541 and out["extra"]["aspp_rates"] == [6, 12, 18]


@pytest.mark.parametrize("argv,message", [
    (["--head", "yolo"], "invalid choice"),
    (["--head", "deeplabv3", "--output_stride", "32"], "output_stride must be one of"),
    (["--head", "deeplabv3", "--output_stride", "12"], "output_stride"),
    (["--head", "ssdlite", "--output_stride", "16"], "output_stride"),
    (["--head", "ssdlite", "--aspp"], "deeplabv3 options"),
    (["--aspp"], "need --head deeplabv3"),
    (["--output_stride", "64"], "allowed: None or one of"),
])
def test_cli_bad_head_settings(argv, message, capsys):
  try:
    code = complexity_cli.main(argv)
  except SystemExit as e:   # argparse's own choices check
    code = e.code
  assert code == 2
  assert message in capsys.readouterr().err
