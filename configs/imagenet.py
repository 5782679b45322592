"""MobileNetV2 on ImageNet with the paper's recipe (Sandler et al. 2018 §6.1 / slim README).

    mnv2-train --config=configs/imagenet.py --workdir=gs://.../mnv2_1.0_224 \
        --config.input.data_dir=/data/tfds --config.input.manual_dir=/data/imagenet_tars
    mnv2-train --config=configs/imagenet.py:width=0.35,res=96,schedule=paper --workdir=...

Recipe: RMSProp as TensorFlow defines it (decay 0.9, momentum 0.9, epsilon 1.0 inside the
square root, mean-square slot starting at 1), LR 0.045 per 96 images scaled linearly with the
global batch, multiplied by 0.98 every 2.5 epochs (`schedule=released`, slim's README) or every
epoch (`schedule=paper`), L2 weight decay 4e-5 on every non-depthwise kernel, label smoothing
0.1, dropout 0.2, batch-norm decay 0.997, EMA of weights (and BN statistics) 0.9999 with TF's
num_updates warm-up; the EMA weights are evaluated. Inception crop + flip, central crop 0.875.

Hardware / expected result: slim trained 1.0/224 for ~700K steps at batch 768 on 8 GPUs
(~420 epochs) to 71.8% top-1 (the paper reports 72.0%); expect that order of magnitude on a
TPU v3-32 or 8-16 modern GPUs (~1-2 days for 1.0/224). Preparing imagenet2012 needs
ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in `input.manual_dir`.
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, width=1.0, res=224, schedule="released", epochs=420.0, batch=768,
                       model="mobilenet_v2")
  if a.schedule not in ("released", "paper"):
    raise ValueError(f"schedule must be one of ('released', 'paper'), got {a.schedule!r}")
  config = common.base_config(dataset="imagenet2012", resolution=a.res, batch_size=a.batch,
                              num_epochs=a.epochs, width=a.width)
  config.model.name = a.model
  config.optim.decay_epochs = 2.5 if a.schedule == "released" else 1.0
  config.train.log_every_steps = 200
  config.train.eval_every_steps = 5000
  config.train.checkpoint_every_steps = 2000
  config.wandb.tags = ("imagenet", f"schedule={a.schedule}")
  return config
