"""SSDLite + MobileNetV2 on COCO 2017 (paper §6.2, Tables 5 and 6).

    tfds build coco/2017 --data_dir=$DATA --file_format=array_record     # ~25 GB, once
    mnv2-train --config=configs/ssdlite_coco.py --workdir=runs/ssdlite \\
        --config.input.data_dir=$DATA --config.model.shortcut=expansion
    mnv2-train --config=configs/ssdlite_coco.py:width=0.5,res=320 ...

The paper's settings (tensorflow/models `ssdlite_mobilenet_v2_coco.config`, reference §2),
and what this file uses:
- input 320x320 (the paper's text; the TF sample config resizes to 300x300), fixed-shape
  resize; augmentation: random horizontal flip + SSD random crop (`config.dense_augment`);
- 80 object classes (tfds `coco/2017` labels) + background = 81 class slots per anchor
  (Table 6's 4.3M / 0.8B are reproduced with 81; TF's config uses 90 + 1);
- 6 feature maps (layer_15/expansion_output, layer_19, 4 extra layers 512/256/256/128),
  3 anchors on the first and 6 on the others (2034 at 320), scales 0.2-0.95, aspect ratios
  1, 2, 1/2, 3, 1/3 (`detection.anchors.AnchorConfig`);
- matching IoU 0.5 (argmax, forced for every ground-truth box), box coder scales 10/10/5/5;
- loss: weighted sigmoid classification with hard-negative mining (3 negatives per positive,
  at least 3 per image; TF additionally de-duplicates candidates with NMS at IoU 0.99, not done
  here) + smooth L1 localisation, both weight 1, normalised by the number of matches;
- RMSProp (decay 0.9, momentum 0.9, epsilon 1.0), lr 0.004 at batch 24, x0.95 every 800,720
  steps (~162 epochs: in practice constant), 200k steps = ~40 epochs, L2 4e-5, BN decay 0.9997
  (momentum) and epsilon 1e-3; no weight EMA;
- post-processing: sigmoid scores, score threshold 1e-8, NMS IoU 0.6, 100 per class and in
  total (TF's `combined_non_max_suppression`);
- evaluation: COCO mAP@[.5:.95] by pycocotools on `validation` (val2017; the paper reports
  test-dev, 22.1 mAP);
- the backbone starts ImageNet-trained in the paper: `config.init` (mnv2_jax/backbone_init.py),
  `--config.init.source=run --config.init.path=<an mnv2-train ImageNet run>` or
  `--config.init.source=keras --config.init.path=mobilenet_v2_1.0_224.h5` (Keras's released
  file, with its top, fetched by you); the default is random init.
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, width=1.0, res=320, epochs=40.0, batch=24, head="ssdlite",
                       dataset="coco/2017")
  config = common.dense_config(head=a.head, dataset=a.dataset, resolution=a.res,
                               batch_size=a.batch, num_epochs=a.epochs, width=a.width)
  config.model.bn_momentum = 0.9997
  config.optim.update(dict(name="rmsprop_tf", base_lr=0.004, base_batch_size=24,
                           schedule="exponential", decay_rate=0.95,
                           decay_epochs=800720 * 24 / 118287, staircase=True,
                           rmsprop_decay=0.9, momentum=0.9, rmsprop_eps=1.0,
                           weight_decay=4e-5, ema_decay=0.0))
  config.train.eval_every_epochs = 5.0
  config.wandb.tags = ("ssdlite", "coco")
  return config
