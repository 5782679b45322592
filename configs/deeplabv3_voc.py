"""Mobile DeepLabv3 ("MNet V2*") on PASCAL VOC 2012 segmentation (paper §6.3, Table 7).

    # VOCtrainval_11-May-2012.tar (and, for trainaug, SBD's benchmark.tgz) in $MANUAL:
    mnv2-train --config=configs/deeplabv3_voc.py --workdir=runs/deeplab \\
        --config.input.data_dir=$DATA --config.input.manual_dir=$MANUAL
    mnv2-train --config=configs/deeplabv3_voc.py:os=8,aspp ...     # Table 7's other rows
    mnv2-train --config=configs/deeplabv3_voc.py:dataset=voc2012_segmentation/trainaug ...

The paper's settings (tensorflow/models deeplab, reference §3), and what this file uses:
- the backbone's `layer_18` (320 channels) at output stride 16 (8: `os=8`), dilated depthwise
  convs past it (slim's rule); head: image pooling + 1x1 branch, 256 channels, BN (epsilon
  1e-5) + ReLU, projection, dropout (keep 0.9), 1x1 logits with bias, bilinear upsampling;
  ASPP off (`aspp` adds 3x3 convs at rates 6/12/18, or 12/24/36 at OS 8);
- 21 classes (background included), label 255 ignored in the loss and the metric;
- crops 513x513, random scale 0.5-2.0 in steps of 0.25, random flip, padding with the mean
  pixel / the ignore label (`config.dense_augment`);
- SGD momentum 0.9, "poly" learning rate (power 0.9), L2 4e-5. The paper's backbone is
  ImageNet-trained (and the whole model COCO-pretrained, not done here). Start from a classifier
  with `config.init` (mnv2_jax/backbone_init.py): `--config.init.source=run
  --config.init.path=<an mnv2-train ImageNet run>` or `--config.init.source=keras
  --config.init.path=mobilenet_v2_1.0_224.h5` (Keras's released file, with its top, fetched by
  you). The default is random init, so absolute mIoU is then not Table 7's (75.32%).
- evaluation: mIoU over the 1,449 `validation` images, each padded to 513 (single scale; the
  MF rows' multi-scale + flip evaluation is counted by `mnv2-complexity --multi_scale`, not run).
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, width=1.0, res=513, epochs=50.0, batch=8, os=16, aspp=False,
                       dataset="voc2012_segmentation")
  config = common.dense_config(head="deeplabv3", dataset=a.dataset, resolution=a.res,
                               batch_size=a.batch, num_epochs=a.epochs, width=a.width)
  config.head.output_stride = a.os
  config.head.aspp = a.aspp
  config.optim.update(dict(name="sgd", base_lr=0.007, base_batch_size=16, schedule="poly",
                           poly_power=0.9, momentum=0.9, nesterov=False, weight_decay=4e-5,
                           ema_decay=0.0))
  config.train.eval_every_epochs = 5.0
  config.wandb.tags = ("deeplabv3", "voc")
  return config
