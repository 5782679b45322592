"""Fig. 6a + 6b on the detection and segmentation backbones: does the block design that wins
for classification also win for SSDLite (mAP) and DeepLabv3 (mIoU) at equal MAdds?

The four block designs of `fig6a_nonlinearity.py` + `fig6b_shortcut.py` (linear / ReLU6
bottleneck with bottleneck shortcuts; linear bottleneck with expansion / no shortcuts) change
no parameter and no MAdd of backbone or head (`heads_complexity`), so each preset's runs sit at
one compute point. The head reads the same endpoints under every variant (under
shortcut="expansion", `layer_15/expansion_output` is the tensor after the incoming add).

| preset | runs (default seeds) | expected compute |
|---|---|---|
| coco | 4 (1 seed): SSDLite 1.0/320, 40 epochs | see `mnv2-sweep --dry_run` (~0.79B MAdds/image) |
| voc | 4 (1 seed): DeepLabv3 1.0/513 OS 16, 50 epochs of train_aug | see `--dry_run` (~2.74B MAdds/image) |
| scenes_det | 8 (2 seeds): SSDLite 0.35/96 on digit_scenes, 8 epochs | ~2 min per run on a 2-core CPU |
| scenes_seg | 8 (2 seeds): DeepLabv3 0.35/64 OS 8 on digit_scenes | ~1 min per run on a 2-core CPU |

    mnv2-sweep experiments/dense_fig6.py --preset=scenes_det --dry_run
    mnv2-sweep experiments/dense_fig6.py --preset=coco --dry_run     # compute estimate
"""

from mnv2_jax.sweeps import combinators as C
from mnv2_jax.sweeps import presets

PRESETS = presets.select("coco", "voc", "scenes_det", "scenes_seg")
VARIANTS = ({"model.bottleneck_activation": "linear", "model.shortcut": "bottleneck"},
            {"model.bottleneck_activation": "relu6", "model.shortcut": "bottleneck"},
            {"model.bottleneck_activation": "linear", "model.shortcut": "expansion"},
            {"model.bottleneck_activation": "linear", "model.shortcut": "none"})


def get_sweep(preset: str = "scenes_det", seeds: int | None = None):
  """(base config, runs): the Fig. 6 block designs x seeds on a dense head."""
  p, arg = presets.parse_preset(preset)
  runs = C.product(C.fixed(p.fixed), C.chain(*[C.fixed(v) for v in VARIANTS]),
                   p.seed_sweep(seeds))
  return p.base_config(arg), runs
