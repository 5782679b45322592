"""A dense run's backbone initialized from a trained classifier: the paper's recipe.

SSDLite (paper §6.2) and Mobile DeepLabv3 (§6.3) are trained from an ImageNet-trained
MobileNetV2, not from scratch. `config.init` says where the backbone's weights come from:

    init.source  "none" (random init, the default) | "run" | "keras"
    init.path    source="run": the workdir of an `mnv2-train` classifier run;
                 source="keras": a `keras.applications.MobileNetV2` weights file *with* the
                 1000-class top (the released `..._224.h5`, or one saved by
                 `model.save_weights`); read offline, nothing is downloaded
    init.step    source="run": the checkpoint step, -1 = the newest
    init.raw     source="run": the raw weights even if the run trained an EMA (default: the
                 weights that run evaluates, as `mnv2-eval` does)

What is copied: every parameter and batch-norm statistic the dense model declares under
`backbone/` (the classifier's layout, `models.heads`), from the same path of the classifier.
The classifier's logits, and backbone layers the head does not use, are dropped. The head keeps
its random init; the optimizer state and the EMA start from the copied weights. A resumed run
restores its own checkpoint and reads nothing from the source.

Checked before anything is compiled or written (`check`): the fields; that the source exists;
that its model name, width multiplier and every ablation axis equal this run's (a ReLU6
bottleneck has the same shapes as a linear one, so shapes alone would not catch it); and (in
`load`, before the state is created) that every copied array has the shape this backbone
declares. The output stride is not compared: dilation changes no weight.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from mnv2_jax import ablations
from mnv2_jax import convert
from mnv2_jax import restore

SOURCES = ("none", "run", "keras")
BACKBONE = "backbone"  # The dense modules' backbone scope (`models.heads`).


def config() -> ml_collections.ConfigDict:
  """`config.init` with its defaults (random init)."""
  return ml_collections.ConfigDict(dict(
      source="none", path=ml_collections.FieldReference(None, field_type=str), step=-1,
      raw=False))


@dataclasses.dataclass(frozen=True)
class Source:
  kind: str            # "run" | "keras"
  path: str
  step: int | None     # run: the checkpoint step (resolved); keras: None
  raw: bool


def check(config_: Any, model: Any) -> Source | None:
  """The checked `config.init` of a dense run whose module is `model`; None for random init.

  Raises ValueError naming the `init.<field>` (or the architecture field that differs).
  """
  init = config_.get("init")
  if init is None or init.source == "none":
    return None
  if init.source not in SOURCES:
    raise ValueError(f"init.source must be one of {SOURCES}, got {init.source!r}")
  if not init.path:
    raise ValueError(f"init.path must be set when init.source={init.source!r} (the classifier "
                     "run's workdir, or a Keras weights file)")
  if not isinstance(init.step, int) or init.step < -1:
    raise ValueError(f"init.step must be -1 (the newest checkpoint) or a saved step >= 0, got "
                     f"{init.step!r}")
  backbone = model.backbone
  if init.source == "keras":
    if init.step != -1 or init.raw:
      raise ValueError("init.step and init.raw are for init.source='run'; a Keras file has one "
                       "set of weights")
    if not os.path.isfile(init.path):
      raise ValueError(f"init.path={init.path!r} is not a file (source='keras' reads a Keras "
                       "MobileNetV2 weights file; nothing is downloaded)")
    try:
      convert.check_keras_compatible(backbone)
    except ValueError as e:
      raise ValueError(f"init.source='keras': {e}") from None
    return Source("keras", init.path, None, False)
  restore.check_workdir(init.path, "init.path")
  step = restore.checkpoint_step(init.path, None if init.step == -1 else init.step,
                                 "init.path", "init.step")
  source_cfg = restore.load_config(init.path)
  if "head" in source_cfg:
    raise ValueError(f"init.path={init.path!r} is a {source_cfg.head.name} run; allowed: a "
                     "classifier run (its backbone is what a dense head starts from)")
  _check_same_architecture(source_cfg.model, config_.model, init.path)
  return Source("run", init.path, step, bool(init.raw))


def _check_same_architecture(source: Any, target: Any, path: str) -> None:
  theirs = {"name": source.name, "width_multiplier": float(source.width_multiplier),
            **ablations.values_of(source.name, source)}
  ours = {"name": target.name, "width_multiplier": float(target.width_multiplier),
          **ablations.values_of(target.name, target)}
  for field, value in ours.items():
    if theirs.get(field) != value:
      raise ValueError(
          f"init.path={path!r} trained model.{field}={theirs.get(field)!r}, this run has "
          f"model.{field}={value!r}: a backbone initializes only the same architecture")


def _classifier_variables(source: Source, backbone: Any, resolution: int) -> dict:
  if source.kind == "run":
    return restore.restore(source.path, source.step, raw=source.raw).variables
  import keras  # pylint: disable=g-import-not-at-top
  keras_model = keras.applications.MobileNetV2(
      input_shape=(resolution, resolution, 3), alpha=backbone.width_multiplier,
      weights=source.path, classifier_activation=None)
  # The file holds Keras's 1000-way top (dropped below): convert against a classifier of it.
  return convert.from_keras(keras_model, backbone.clone(output_stride=None, num_classes=1000))


def load(source: Source, abstract_variables: dict, backbone: Any, resolution: int) -> dict:
  """{"params": {"backbone": ...}, "batch_stats": {"backbone": ...}} (`train_state.create`'s
  `pretrained`): the backbone subtree of `abstract_variables` (the dense model's variables,
  shapes only) filled from `source`; ValueError naming a missing or differently shaped array."""
  variables = _classifier_variables(source, backbone, resolution)
  out = {}
  for collection in ("params", "batch_stats"):
    wanted = abstract_variables[collection][BACKBONE]
    have = variables[collection]

    def take(path, leaf, have=have, collection=collection):
      name = "/".join(str(getattr(k, "key", k)) for k in path)
      node = have
      for k in path:
        key = getattr(k, "key", k)
        if not isinstance(node, dict) or key not in node:
          raise ValueError(f"init.path={source.path!r} has no {collection} {name!r} (the "
                           "backbone declares it)")
        node = node[key]
      value = np.asarray(node)
      if value.shape != leaf.shape:
        raise ValueError(f"init.path={source.path!r}: {collection} {name!r} has shape "
                         f"{value.shape}, this backbone declares {leaf.shape}")
      return value.astype(leaf.dtype)

    out[collection] = {BACKBONE: jax.tree_util.tree_map_with_path(take, wanted)}
  return out
