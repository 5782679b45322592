"""SSD / SSDLite detection math (paper §6.2), following the TF Object Detection API.

Modules (import the one you need; this package imports nothing itself):
- `anchors`: the `ssd_anchor_generator` box specs and grid anchors (numpy only, no jax/tf, so
  `mnv2_jax.heads_spec` can size the predictors from it).
- `box_coding`: `FasterRcnnBoxCoder` encode / decode with scale factors (10, 10, 5, 5) (jnp).
- `matching`: IoU and the `ArgMaxMatcher` + target assigner -> per-anchor targets (jnp, jit-able).
- `loss`: weighted sigmoid / softmax classification + smooth-L1 localisation with hard-example
  mining, normalised by the number of matches (jnp, jit-able).
- `postprocess`: host-side decoding + `tf.image.combined_non_max_suppression` (numpy in / out).
- `coco_eval`: COCO box mAP through pycocotools.
"""
