"""Semantic segmentation (Mobile DeepLabv3, paper §6.3): the per-pixel loss and the mIoU metric.

  loss.py     `pixel_cross_entropy` (mean over the non-ignored pixels, DeepLab's loss) and
              `upsample_logits` (logits back to the label size before the loss, as DeepLab's
              `upsample_logits=True`).
  metrics.py  `confusion_matrix` (jit-able, fixed [C, C] shape, accumulated per batch) and the
              numpy-side `miou` / `pixel_accuracy` (PASCAL VOC / `tf.metrics.mean_iou` rule).

Pure JAX / numpy: nothing here imports TensorFlow or the input side (`mnv2_jax.data`), so the
train and eval steps can use it as `mnv2_jax.steps` uses `image_norm`. The data side is
`mnv2_jax.data.voc_segmentation` (the TFDS builder) and `mnv2_jax.data.seg_preprocessing`
(DeepLab's tf.data augmentation); both mark unlabelled pixels
with the ignore label 255 (`loss.IGNORE_LABEL`).
"""
