"""Import weights from `keras.applications.MobileNetV2` into `mnv2_jax.models.MobileNetV2`.

    keras_model = keras.applications.MobileNetV2(alpha=1.0, weights="path/to/weights.h5",
                                                 classifier_activation=None)
    model = MobileNetV2(width_multiplier=1.0, num_classes=1000)
    variables = from_keras(keras_model, model)
    logits = model.apply(variables, images_in_minus1_1, train=False)

Keras's MobileNetV2 is architecturally the released slim network (same widths, last conv 1280
below width 1, TF SAME padding at stride 2 via `correct_pad`, BN epsilon 1e-3) with a Dense
classifier and no dropout. Matching logits after conversion (tests/test_convert.py) is the
proof that the spec here is exactly the reference architecture, and lets users evaluate the
released ImageNet weights. Nothing here downloads: pass `weights=None` or a local `.h5` file.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from mnv2_jax import ablations
from mnv2_jax import spec as spec_lib


def _keras_prefix(scope: str, name: str) -> str:
  """Keras layer-name prefix of one of our conv layers."""
  if scope == "stem":
    return "Conv1"
  if scope == "head":
    return "Conv_1"
  block = int(scope.split("_")[1])
  return f"expanded_conv_{name}" if block == 0 else f"block_{block}_{name}"


def _keras_bn_name(scope: str, name: str) -> str:
  if scope == "stem":
    return "bn_Conv1"
  if scope == "head":
    return "Conv_1_bn"
  return _keras_prefix(scope, name) + "_BN"


def _weights(keras_model, layer_name: str) -> list[np.ndarray]:
  try:
    layer = keras_model.get_layer(layer_name)
  except ValueError as e:
    raise ValueError(f"Keras model has no layer {layer_name!r}; is it "
                     f"keras.applications.MobileNetV2 with include_top=True?") from e
  return [np.asarray(w) for w in layer.get_weights()]


def check_keras_compatible(model: Any) -> None:
  """Raises a ValueError naming the axis if `model` is not what Keras's MobileNetV2 builds.

  Keras (like slim) builds the paper's block only: 3x3 depthwise convs, linear bottlenecks,
  shortcuts between bottlenecks, expansion 6. A 5x5 model, say, has no Keras weights to import.
  """
  name = getattr(model, "NAME", None)
  if name != "mobilenet_v2":
    raise ValueError(f"Keras import builds MobileNetV2 only, got model {name!r}")
  for axis in ablations.axes(name):
    value = getattr(model, axis.field)
    if not axis.is_baseline(value):
      raise ValueError(
          f"Keras's MobileNetV2 has {axis.path}={axis.baseline!r} only; this model has "
          f"{axis.field}={value!r}, so there are no Keras weights to import. Build the model "
          f"with {axis.field}={axis.baseline!r} to import Keras weights.")


def from_keras(keras_model, model: Any | None = None) -> dict[str, Any]:
  """Converts a Keras MobileNetV2 into `{"params": ..., "batch_stats": ...}` for our model.

  Args:
    keras_model: `keras.applications.MobileNetV2(..., include_top=True)`, any alpha/resolution.
    model: optional `MobileNetV2`; if given, every converted shape is checked against it and a
      mismatch raises a ValueError that names the parameter (e.g. a wrong width multiplier).
  """
  if model is not None:
    check_keras_compatible(model)
  num_classes = _weights(keras_model, "predictions")[1].shape[0]
  # The channel plan depends only on the width multiplier (not on resolution); without a model
  # it is recovered from Keras's layer widths. Either way we walk the spec's layer list.
  arch = model.spec(224) if model is not None else _spec_from_keras(keras_model, num_classes)
  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}
  for layer in arch.layers:
    if layer.op == "dense":
      kernel, bias = _weights(keras_model, "predictions")
      params["logits"] = {"kernel": kernel, "bias": bias}
      continue
    (kernel,) = _weights(keras_model, _keras_prefix(layer.scope, layer.name))
    if layer.op == "depthwise":  # Keras (kh, kw, C, 1) -> ours (kh, kw, 1, C)
      kernel = np.transpose(kernel, (0, 1, 3, 2))
    gamma, beta, mean, var = _weights(keras_model, _keras_bn_name(layer.scope, layer.name))
    params.setdefault(layer.scope, {})[layer.name] = {
        "conv": {"kernel": kernel}, "bn": {"scale": gamma, "bias": beta}}
    stats.setdefault(layer.scope, {})[layer.name] = {"bn": {"mean": mean, "var": var}}
  variables = {"params": params, "batch_stats": stats}
  if model is not None:
    _check_shapes(model, variables)
  return jax.tree.map(np.asarray, variables)


def _spec_from_keras(keras_model, num_classes: int) -> spec_lib.ArchSpec:
  """Recovers the width multiplier by matching the channel plan of Keras's layers."""
  stem = _weights(keras_model, "Conv1")[0].shape[-1]
  last_proj = _weights(keras_model, "block_16_project")[0].shape[-1]
  for width in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
    arch = spec_lib.mobilenet_v2_spec(width, 224, num_classes)
    if (arch.layer("stem/conv").out_channels == stem
        and arch.layer("block_16/project").out_channels == last_proj):
      return arch
  raise ValueError(f"cannot infer the width multiplier of Keras model {keras_model.name!r} "
                   f"(stem {stem} ch, last block {last_proj} ch); pass `model=`")


def _check_shapes(model, variables) -> None:
  import jax.numpy as jnp
  x = jnp.zeros((1, 224, 224, 3))
  expected = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  flat_expected = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
  flat_got = dict(jax.tree_util.tree_flatten_with_path(variables)[0])
  if set(flat_expected) != set(flat_got):
    missing = sorted(map(jax.tree_util.keystr, set(flat_expected) - set(flat_got)))
    extra = sorted(map(jax.tree_util.keystr, set(flat_got) - set(flat_expected)))
    raise ValueError(f"parameter trees differ: missing {missing[:5]}, unexpected {extra[:5]}")
  for path, leaf in flat_expected.items():
    if tuple(leaf.shape) != tuple(flat_got[path].shape):
      raise ValueError(f"shape mismatch at {jax.tree_util.keystr(path)}: model expects "
                       f"{tuple(leaf.shape)}, Keras gives {tuple(flat_got[path].shape)}; "
                       f"check width_multiplier and num_classes")
