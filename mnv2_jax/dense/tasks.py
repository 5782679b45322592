"""`config.head`: which dense task a run trains, its defaults (declared once) and its checks.

A config with a `head` section trains a detector or a segmenter on the MobileNet backbone of
`config.model` (every ablation axis applies); without one, the classifier. The section's
fields and defaults are read from where they are declared: the Flax head modules'
(`models.heads.SSDLite` / `DeepLabV3`), the loss's keyword defaults (`detection.loss.ssd_loss`)
and the post-processing's (`detection.postprocess.detect`), the anchor generator's
(`detection.anchors.AnchorConfig`) and the segmentation loss's ignore label.

`build_model(config, num_classes)` constructs the module (no init) and re-raises any bad
field as `head.<field>` / `model.<field>`, before anything compiles or writes.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import ml_collections

from mnv2_jax import heads_spec
from mnv2_jax import train_state
from mnv2_jax.detection import loss as det_loss
from mnv2_jax.detection import postprocess
from mnv2_jax.models import heads
from mnv2_jax.segmentation import loss as seg_loss

TASKS = {"ssdlite": "detection", "ssd": "detection", "deeplabv3": "segmentation"}
METRIC = {"detection": "mAP", "segmentation": "mIoU"}


def _kwdefaults(fn) -> dict[str, Any]:
  return {k: p.default for k, p in inspect.signature(fn).parameters.items()
          if p.kind == p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty}


def _module_fields(cls) -> dict[str, Any]:
  return {f.name: f.default for f in dataclasses.fields(cls)
          if f.name not in ("parent", "name", "backbone", "num_classes", "head")}


def head_config(name: str) -> ml_collections.ConfigDict:
  """`config.head` for head `name` with every default from its declaration."""
  heads_spec.check_head(name)
  if TASKS[name] == "detection":
    fields = {**_module_fields(heads.SSDLite), "name": name,
              "loss": ml_collections.ConfigDict(_kwdefaults(det_loss.ssd_loss)),
              "postprocess": ml_collections.ConfigDict(_kwdefaults(postprocess.detect))}
  else:
    fields = {**_module_fields(heads.DeepLabV3), "name": name,
              "output_stride": heads_spec.DEEPLAB_OUTPUT_STRIDE,
              "ignore_label": _kwdefaults(seg_loss.pixel_cross_entropy)["ignore_label"]}
    fields["aspp_rates"] = ml_collections.FieldReference(None, field_type=tuple)
  return ml_collections.ConfigDict(fields)


def task_of(config) -> str:
  """"classification", "detection" or "segmentation"."""
  if "head" not in config or config.head is None:
    return "classification"
  name = config.head.get("name")
  if name not in TASKS:
    raise ValueError(f"head.name must be one of {tuple(TASKS)}, got {name!r}")
  return TASKS[name]


def _named(error: ValueError, section: str, fields) -> ValueError:
  message = str(error)
  field = message.split(" ", 1)[0].split("=", 1)[0]
  if field in fields and not message.startswith(f"{section}."):
    return ValueError(f"{section}.{message}")
  return ValueError(f"config.{section}: {message}" if not message.startswith(
      ("model.", "head.", "config.")) else message)


def _check_kwargs(section, fn, field: str) -> None:
  """`config.head.<field>` must hold exactly `fn`'s keyword arguments, with valid values."""
  allowed = _kwdefaults(fn)
  unknown = sorted(set(section) - set(allowed))
  if unknown:
    raise ValueError(f"head.{field} has unknown fields {unknown}; allowed: {tuple(allowed)}")
  choices = {"classification": det_loss.CLASSIFICATIONS, "score_fn": postprocess.SCORE_FNS}
  for key, value in section.items():
    if key in choices and value not in choices[key]:
      raise ValueError(f"head.{field}.{key} must be one of {choices[key]}, got {value!r}")
    if key in ("score_threshold", "iou_threshold") and not (
        isinstance(value, (int, float)) and 0 <= value <= 1):
      raise ValueError(f"head.{field}.{key} must be a number in [0, 1], got {value!r}")
    if key in ("negatives_per_positive", "localization_weight", "classification_weight") and not (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
      raise ValueError(f"head.{field}.{key} must be a number >= 0, got {value!r}")
    if key in ("max_per_class", "max_total", "min_negatives_per_image") and not (
        isinstance(value, int) and not isinstance(value, bool) and value >= 0):
      raise ValueError(f"head.{field}.{key} must be an integer >= 0, got {value!r}")


def build_model(config, num_classes: int):
  """The SSDLite / DeepLabV3 module of `config.model` + `config.head` (not initialised)."""
  task = task_of(config)
  if task == "detection":
    _check_kwargs(config.head.loss, det_loss.ssd_loss, "loss")
    _check_kwargs(config.head.postprocess, postprocess.detect, "postprocess")
  head = dict(config.head)
  model_cfg = dict(config.model)
  if task == "segmentation":
    stride = head.pop("output_stride")
    if stride not in heads_spec.DEEPLAB_OUTPUT_STRIDES:
      raise ValueError(f"head.output_stride must be one of {heads_spec.DEEPLAB_OUTPUT_STRIDES} "
                       f"for deeplabv3, got {stride!r}")
    model_cfg["output_stride"] = stride
  try:
    backbone = train_state.build_model(model_cfg, 1)
  except ValueError as e:
    raise _named(e, "model", config.model) from e
  name = head.pop("name")
  fields = _module_fields(heads.HEAD_MODELS[name])
  extra = set(head) - set(fields) - {"loss", "postprocess", "ignore_label"}
  if extra:
    raise ValueError(f"head has unknown fields {sorted(extra)} for head.name={name!r}; "
                     f"allowed: {('name', *fields)}")
  kwargs = {k: v for k, v in head.items() if k in fields}
  if task == "detection":
    kwargs["head"] = name
  else:
    kwargs["aspp_rates"] = tuple(kwargs.get("aspp_rates") or ())
  try:
    model = heads.HEAD_MODELS[name](backbone=backbone, num_classes=num_classes, **kwargs)
    model.task(config.input.resolution)
  except ValueError as e:
    raise _named(e, "head", config.head) from e
  return model


def figures(model, resolution: int):
  """`heads_complexity.analyze` of the run's model at its resolution."""
  from mnv2_jax import heads_complexity  # pylint: disable=g-import-not-at-top
  return heads_complexity.analyze(model.task(resolution))
