"""MobileNetV2 and MobileNetV1 as functional Flax (linen) modules, built by walking `spec`.

Usage::

    model = MobileNetV2(width_multiplier=0.35, shortcut="expansion")
    variables = model.init(rng, images, train=False)          # {"params", "batch_stats"}
    logits = model.apply(variables, images, train=False)
    logits, updates = model.apply(variables, images, train=True, mutable=["batch_stats"],
                                  rngs={"dropout": key})

Inputs are NHWC float images already normalised (to [-1, 1] for the paper's recipe); any
square or non-square size >= 32 works; the spec is expanded for the input's height. Logits are
returned in float32 whatever the compute `dtype`; parameters are always float32.

Batch norm: training mode normalises with statistics of the whole (global) batch and updates
the running statistics in the `batch_stats` collection; `train=False` uses the running ones.
See `mnv2_jax.models.layers` for the exact semantics under data parallelism.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mnv2_jax import ablations
from mnv2_jax import spec as spec_lib
from mnv2_jax.models import layers
from mnv2_jax.models import split as split_lib
from mnv2_jax.ops import impl as impl_lib

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def _resolve_dtype(dtype: Any):
  if isinstance(dtype, str):
    if dtype not in DTYPES:
      raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]
  if jnp.dtype(dtype) not in {jnp.dtype(d) for d in DTYPES.values()}:
    raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
  return dtype


class _MobileNet(nn.Module):
  """Shared fields and the spec walk; subclasses name the spec they expand (`NAME`).

  These fields, with their defaults, are the model's part of every config
  (`configs.common.model_config` reads them); the ablation axes' defaults are their baselines
  (`mnv2_jax.ablations`).
  """
  NAME = ""
  width_multiplier: float = 1.0
  num_classes: int = 1000
  dropout_rate: float = 0.2
  dtype: Any = "float32"
  bn_momentum: float = 0.997
  bn_epsilon: float = 1e-3
  kernel_init: str = "slim"
  impl: impl_lib.Impl = impl_lib.Impl()
  inference_split: int = 1
  output_stride: int | None = None

  def __post_init__(self):
    # Fail on bad fields at construction, before any tracing or compilation.
    missing = [a.path for a in ablations.axes(self.NAME) if not hasattr(self, a.field)]
    if missing:
      raise ValueError(f"{type(self).__name__} has no field for the declared axes {missing}: "
                       "an axis needs its model field and spec keyword (mnv2_jax.ablations)")
    split_lib.check(self.spec(224), self.inference_split)
    _resolve_dtype(self.dtype)
    layers.kernel_initializer(self.kernel_init)
    if not isinstance(self.impl, impl_lib.Impl):
      raise ValueError(f"impl must be an mnv2_jax.ops.impl.Impl (e.g. Impl.from_config("
                       f"config.model.impl)), got {self.impl!r}")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
    if not 0.0 <= self.bn_momentum < 1.0:
      raise ValueError(f"bn_momentum must be in [0, 1), got {self.bn_momentum!r}")
    if not self.bn_epsilon > 0:
      raise ValueError(f"bn_epsilon must be positive, got {self.bn_epsilon!r}")
    super().__post_init__()

  def spec(self, resolution: int) -> spec_lib.ArchSpec:
    """The architecture at `resolution`, from this module's width and axis fields."""
    return spec_lib.from_config(
        {"name": self.NAME, "width_multiplier": self.width_multiplier,
         **{a.field: getattr(self, a.field) for a in ablations.axes(self.NAME)}},
        resolution, self.num_classes, output_stride=self.output_stride)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool,
               endpoints: tuple[str, ...] = ()) -> jax.Array | dict[str, jax.Array]:
    """Logits (float32); or, with `endpoints` (slim names, `spec.ArchSpec.endpoint`), the
    backbone only, up to the last endpoint asked for (no later layer and no classifier is
    declared), returning {name: feature map} in the compute dtype: the dense heads' input."""
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f"images must be NHWC with 3 channels, got shape {x.shape}")
    if min(x.shape[1:3]) < spec_lib.MIN_RESOLUTION:
      raise ValueError(f"resolution must be >= {spec_lib.MIN_RESOLUTION}, got input "
                       f"{x.shape[1]}x{x.shape[2]}")
    arch = self.spec(x.shape[1])
    dtype = _resolve_dtype(self.dtype)
    numerics = layers.Numerics(dtype, self.bn_momentum, self.bn_epsilon, self.kernel_init,
                               self.impl.resolve(dtype=dtype))
    if endpoints:
      return self._features(x, arch, numerics, tuple(endpoints), train)
    if self.inference_split > 1:
      if train:
        raise ValueError(f"inference_split={self.inference_split} is an inference schedule "
                         "(paper §5.1): call with train=False, or train with inference_split=1")
      return self._split_forward(x, arch, numerics)
    sources = {s.source for s in arch.shortcuts}
    saved: dict[str, jax.Array] = {}
    for scope in arch.scopes:
      group = tuple(l for l in arch.layers if l.scope == scope)
      if group[0].op == "dense":
        x = self._classifier(x, scope, numerics, train)
        continue
      incoming = {s.target: saved[s.source] for s in arch.shortcuts
                  if s.target.startswith(scope + "/")}
      outputs = layers.LayerGroup(group, numerics, name=scope)(x, incoming, train=train)
      saved.update({p: v for p, v in outputs.items() if p in sources})
      x = outputs[group[-1].path]
    return x.astype(jnp.float32)

  def _features(self, x, arch: spec_lib.ArchSpec, numerics: layers.Numerics,
                endpoints: tuple[str, ...], train: bool) -> dict[str, jax.Array]:
    if self.inference_split > 1:
      raise ValueError(f"inference_split={self.inference_split} computes logits only; use 1 "
                       "for feature endpoints")
    paths = {name: arch.endpoint(name).path for name in endpoints}
    order = [l.path for l in arch.layers]
    used = arch.layers_through(max(paths.values(), key=order.index))
    sources = {s.source for s in arch.shortcuts}
    keep = sources | set(paths.values())
    saved: dict[str, jax.Array] = {}
    for scope in dict.fromkeys(l.scope for l in used):
      group = tuple(l for l in used if l.scope == scope)
      incoming = {s.target: saved[s.source] for s in arch.shortcuts
                  if s.target.startswith(scope + "/") and s.source in saved}
      outputs = layers.LayerGroup(group, numerics, name=scope)(x, incoming, train=train)
      saved.update({p: v for p, v in outputs.items() if p in keep})
      x = outputs[group[-1].path]
    return {name: saved[path] for name, path in paths.items()}

  def _classifier(self, x: jax.Array, scope: str, numerics: layers.Numerics,
                  train: bool) -> jax.Array:
    """Global average pooling, dropout (training only) and the dense classifier."""
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=numerics.dtype, param_dtype=jnp.float32,
                    kernel_init=layers.kernel_initializer(self.kernel_init), name=scope)(x)

  def _split_forward(self, x: jax.Array, arch: spec_lib.ArchSpec,
                     numerics: layers.Numerics) -> jax.Array:
    """Inference with every `spec.SplitUnit` in `inference_split` groups (`models.split`):
    the same variables (declared by `split.ScopeParams`) and the same shortcut rule."""
    k = self.inference_split
    units = {u.project.path: u for u in spec_lib.split_units(arch)}
    inside = {p for u in units.values() for p in (u.wide.path, u.depthwise.path)}
    sources = {s.source for s in arch.shortcuts}
    into = {s.target: s.source for s in arch.shortcuts}
    saved: dict[str, jax.Array] = {}
    variables: dict[str, dict] = {}
    unit_input = x
    for scope in arch.scopes:
      group = tuple(l for l in arch.layers if l.scope == scope)
      if group[0].op == "dense":
        x = self._classifier(x, scope, numerics, train=False)
        continue
      variables.update(split_lib.ScopeParams(group, numerics, name=scope)())
      for layer in group:
        if layer.path in inside:  # Computed with its unit's projection.
          if layer.op != "depthwise":
            unit_input = x
          continue
        if layer.path in units:
          x = split_lib.unit_forward(units[layer.path], variables, numerics, unit_input, k)
        else:
          x = split_lib.layer_forward(layer, variables[layer.path], numerics, x)
        if layer.path in into:
          x = x + saved[into[layer.path]].astype(x.dtype)
        if layer.path in sources:
          saved[layer.path] = x
    return x.astype(jnp.float32)


class MobileNetV2(_MobileNet):
  """MobileNetV2 with the paper's ablation switches (Fig. 6).

  Attributes:
    width_multiplier: depth multiplier (0.35 ... 1.4); last conv stays 1280 below 1.
    num_classes: classifier width (1000; 1001 for the slim checkpoints' background class).
    expansion_factor: t of every block but the first (which is fixed at 1).
    bottleneck_activation: "linear" (paper) or "relu6" after the projection BN (Fig. 6a).
    shortcut: "bottleneck" (paper), "expansion" (between expansions, Fig. 6b) or "none".
    depthwise_kernel: k of the k x k depthwise convs, 3 (paper) or 5.
    dropout_rate: dropout on the pooled features before the classifier (slim: 0.2).
    dtype: compute dtype (parameters stay float32), "float32" / "bfloat16" or a jnp dtype.
    bn_momentum, bn_epsilon: TF defaults of slim's training scope (0.997, 1e-3).
    kernel_init: "slim" (truncated normal 0.09), "lecun_normal" or "he_normal".
    impl: `mnv2_jax.ops.impl.Impl`, how the depthwise convs, batch norms and 1x1 convs are
      computed and how native calls are partitioned ("auto": per backend; CPU: native C++
      kernels, elsewhere XLA's library ops). Same parameters and function whichever runs.
    inference_split: k > 1 computes every inverted residual's wide tensor in k channel groups
      at inference (paper §5.1, `mnv2_jax.models.split`): same variables, same outputs up to
      round-off, less peak memory. Must divide every inner width; not with shortcut="expansion"
      nor in training. 1 (default): the standard forward.
    output_stride: None (32) or 16 / 8: later depthwise convs dilated instead of strided
      (slim's atrous rule, `spec`), for the dense heads (`mnv2_jax.models.heads`).
  """
  NAME = "mobilenet_v2"
  # The ablation axes (mnv2_jax.ablations declares them; one field per axis of this model).
  expansion_factor: float = ablations.baseline("model.expansion_factor")
  bottleneck_activation: str = ablations.baseline("model.bottleneck_activation")
  shortcut: str = ablations.baseline("model.shortcut")
  depthwise_kernel: int = ablations.baseline("model.depthwise_kernel")


class MobileNetV1(_MobileNet):
  """MobileNetV1 (Howard et al. 2017), the comparator curve of Fig. 5. Same fields as V2."""
  NAME = "mobilenet_v1"
  dropout_rate: float = 0.001  # slim mobilenet_v1: dropout_keep_prob = 0.999


# The Flax module of each `config.model.name` (the names of `spec.SPECS`).
MODELS = {cls.NAME: cls for cls in (MobileNetV2, MobileNetV1)}
