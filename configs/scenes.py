"""CPU-scale check of the dense heads on real pixels: `digit_scenes` (NOT COCO / VOC).

    mnv2-train --config=configs/digits.py:epochs=12 --workdir=runs/digits    # the backbone
    mnv2-train --config=configs/scenes.py:task=detection,res=128,epochs=2 \
        --workdir=runs/scenes_det --config.optim.base_lr=0.4 \
        --config.init.source=run --config.init.path=runs/digits
    mnv2-train --config=configs/scenes.py:task=segmentation --workdir=runs/scenes_seg

Data: `digit_scenes` (`mnv2_jax.data.digit_scenes`, prepared offline on first use): 1-3 real
scikit-learn digit scans per 64x64 scene with tight boxes and per-pixel masks; train scenes
use only sklearn-digits' train split, test scenes only its test split. Resized to `res`.

Models: SSDLite / Mobile DeepLabv3 exactly as `configs/ssdlite_coco.py` and
`configs/deeplabv3_voc.py` build them (same spec, anchors, loss, post-processing, head), on a
0.35-wide MobileNetV2; only the scale and the recipe differ (SGD + cosine, BN momentum 0.9
for a run of a few hundred steps). Detection: 10 digit classes (+ background); mAP by
pycocotools on the 300 test scenes. Segmentation: 11 classes (background + 10 digits), mIoU.
The backbone starts from a classifier as in the paper (`config.init`), here one trained on
the bundled digits. Status (docs/dense_heads.md, tests/test_dense_learning.py): from that
backbone the detector learns clearly at 128 px in 2 epochs (digit_scenes 3.0.0: mAP 0.052 /
0.041 for seeds 0 / 1; 0.001 for an image-independent detector). The segmenter, on 3.0.0's
filled masks, reaches mIoU 0.366 / 0.222 at 128 px, OS 16, 3 epochs, lr 1.0 (all-background
0.078).
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, task="detection", width=0.35, res=96, epochs=8.0, batch=32)
  if a.task not in ("detection", "segmentation"):
    raise ValueError(f"config arg task must be 'detection' or 'segmentation', got {a.task!r}")
  head = "ssdlite" if a.task == "detection" else "deeplabv3"
  config = common.dense_config(head=head, dataset="digit_scenes", resolution=a.res,
                               batch_size=a.batch, num_epochs=a.epochs, width=a.width)
  # No flips (a mirrored digit is another glyph) and no SSD crop (it cuts digits in half, and
  # a few hundred steps cannot learn the cut glyphs too).
  if a.task == "detection":
    config.dense_augment.update(dict(random_flip=False, ssd_random_crop=False))
  else:
    config.dense_augment.flip = False
  config.input.eval_split = "test"
  config.input.cache = True
  config.model.bn_momentum = 0.9
  config.optim.update(common.sgd_cosine(base_lr=0.2, warmup_epochs=0.5))
  config.optim.label_smoothing = 0.0
  config.train.log_every_steps = 20
  config.train.eval_every_epochs = 4.0
  config.train.checkpoint_every_steps = 200
  config.wandb.tags = ("digit_scenes", head)
  return config
