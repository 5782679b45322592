"""Dense-prediction tasks on the MobileNet backbones (paper §6.2-6.3): SSDLite detection and
Mobile DeepLabv3 segmentation.

- `tasks`: `config.head` (defaults, checks) and the module it builds (`models.heads`);
- `data`: which input pipeline serves `config.input.dataset` for the task;
- `detection` / `segmentation`: the jitted train steps and the evaluations (COCO mAP via
  pycocotools, mIoU).
The loop is `mnv2_jax.train_dense`, entered from `mnv2_jax.train.train_and_evaluate`.
"""
