"""Any tfds image-classification dataset by name (cifar10, imagenette/160px-v2, ...).

    mnv2-train --config=configs/small.py:dataset=cifar10,res=32 --workdir=runs/c10
    mnv2-train --config=configs/small.py:dataset=imagenette/160px-v2,res=128,epochs=60 ...

The dataset must be prepared in `input.data_dir` beforehand (this code never downloads).
SGD + cosine, BN momentum 0.99, no EMA; pad-and-crop augmentation at <= 64 px, Inception crop +
flip above. Expected: cifar10 at 32 px, width 1.0, 100 epochs: ~90-93% top-1 on one GPU in
well under an hour.
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, dataset="cifar10", res=32, width=1.0, epochs=100.0, batch=256,
                       eval_split="test", model="mobilenet_v2")
  config = common.base_config(dataset=a.dataset, resolution=a.res, batch_size=a.batch,
                              num_epochs=a.epochs, width=a.width)
  config.model.name = a.model
  config.input.eval_split = a.eval_split
  config.input.augment = "pad_crop" if a.res <= 64 else "inception_crop_flip"
  config.input.crop_area_min = 0.25
  config.model.bn_momentum = 0.99
  config.optim.update(common.sgd_cosine(base_lr=0.1, warmup_epochs=2.0))
  config.train.log_every_steps = 100
  config.wandb.tags = (a.dataset,)
  return config
