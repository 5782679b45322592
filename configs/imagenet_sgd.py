"""MobileNetV2 on ImageNet with a modern SGD + cosine recipe (a cheaper, robust protocol).

    mnv2-train --config=configs/imagenet_sgd.py:width=1.0,res=224,epochs=90 --workdir=...

SGD with Nesterov momentum 0.9, LR 0.1 per 256 images with 5 warm-up epochs then cosine to 0,
L2 4e-5 on non-depthwise kernels, label smoothing 0.1, EMA 0.9999 (evaluated), BN decay 0.99.
Expected: ~70-71% top-1 for 1.0/224 after 90 epochs (torchvision-style recipes reach 71.9% in
300 epochs); the `imagenet_short` sweep preset uses this file.
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, width=1.0, res=224, epochs=90.0, batch=1024, model="mobilenet_v2")
  config = common.base_config(dataset="imagenet2012", resolution=a.res, batch_size=a.batch,
                              num_epochs=a.epochs, width=a.width)
  config.model.name = a.model
  config.model.bn_momentum = 0.99
  config.optim.update(dict(name="sgd", base_lr=0.1, base_batch_size=256, schedule="cosine",
                           warmup_epochs=5.0, nesterov=True))
  config.train.log_every_steps = 200
  config.train.eval_every_steps = 5000
  config.train.checkpoint_every_steps = 2000
  config.wandb.tags = ("imagenet", "sgd_cosine")
  return config
