"""`Impl`: which formulation of each performance-critical op a model runs, as one typed value.

The model's maths is fixed by the spec; *how* XLA computes a few ops is a speed choice with a
different best answer per backend. Every such choice lives here, in one frozen (hashable, so
it can be a Flax module field) dataclass, set from `config.model.impl` and passed down to the
ops explicitly. Nothing is picked by module globals or monkeypatching, so the accelerator path
(XLA depthwise, XLA batch norm, plain pointwise, usually bfloat16) can be chosen, trained and
tested on a CPU:

    depthwise   "xla" (grouped conv) | "taps" | "taps_vjp" | "native" (C++ FFI, CPU only)
    batchnorm   "xla" (folded multiply-add, autodiff) | "native" (C++ reductions, CPU,
                float32 compute) | "flax" (`flax.linen.BatchNorm` + activation, same variables)
    pointwise   "dot" (a plain `dot_general`, autodiff) | "cpu_vjp" (custom VJP whose weight
                gradient transposes the smaller operand; tuned for XLA:CPU) | "conv" (a 1x1
                `conv_general_dilated`: the form TF-Lite's converter maps to CONV_2D; what
                `mnv2-export` uses, since it rejects a rank-4 `dot_general`)
    partition   "sharded" (native calls data-parallel on multi-device meshes) | "gathered"
                (left to XLA's partitioner, which gathers their operands onto every device)

Each field also takes "auto", resolved per backend by `Impl.resolve` (rules in `_AUTO`; the
measurements behind them are in benchmarks/RESULTS.md). CPU: native kernels where they can be
built (else the best pure-XLA form), the CPU-tuned pointwise VJP; any other backend: the XLA
library ops. Environment variables only change what "auto" can use: `MNV2_JAX_NATIVE=0` makes
the native kernels unavailable (see `mnv2_jax.ops.native`). The trainer resolves the choice
once at start and logs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

AUTO = "auto"
CHOICES: dict[str, tuple[str, ...]] = {
    "depthwise": ("xla", "taps", "taps_vjp", "native"),
    "batchnorm": ("xla", "native", "flax"),
    "pointwise": ("dot", "cpu_vjp", "conv"),
    "partition": ("sharded", "gathered"),
}
NATIVE_ONLY = {"depthwise": "native", "batchnorm": "native"}
"""Values that need the native CPU kernels (CPU backend, a C++ compiler)."""

# What "auto" means, per backend: (with the native kernels, without them).
_AUTO = {
    "cpu": {"depthwise": ("native", "taps_vjp"), "batchnorm": ("native", "xla"),
            "pointwise": ("cpu_vjp", "cpu_vjp"), "partition": ("sharded", "sharded")},
    "default": {"depthwise": ("xla", "xla"), "batchnorm": ("xla", "xla"),
                "pointwise": ("dot", "dot"), "partition": ("sharded", "sharded")},
}


@dataclasses.dataclass(frozen=True)
class Impl:
  """The implementation of each op (see the module docstring); "auto" picks per backend."""
  depthwise: str = AUTO
  batchnorm: str = AUTO
  pointwise: str = AUTO
  partition: str = AUTO

  def __post_init__(self):
    for name, allowed in CHOICES.items():
      value = getattr(self, name)
      if value not in allowed + (AUTO,):
        raise ValueError(f"model.impl.{name} must be one of {allowed + (AUTO,)}, got {value!r}")

  @classmethod
  def from_config(cls, value: Any) -> "Impl":
    """An `Impl` from an `Impl`, a mapping (e.g. `config.model.impl`) or None (all auto)."""
    if value is None:
      return cls()
    if isinstance(value, cls):
      return value
    if not isinstance(value, Mapping) and not hasattr(value, "items"):
      raise ValueError(f"model.impl must be a mapping with keys {tuple(CHOICES)}, got {value!r}")
    fields = dict(value.items())
    unknown = sorted(set(fields) - set(CHOICES))
    if unknown:
      raise ValueError(f"model.impl has unknown keys {unknown}; allowed: {tuple(CHOICES)}")
    return cls(**fields)

  def to_dict(self) -> dict[str, str]:
    return dataclasses.asdict(self)

  @property
  def is_resolved(self) -> bool:
    return AUTO not in self.to_dict().values()

  def resolve(self, backend: str | None = None, dtype: Any = jnp.float32) -> "Impl":
    """Every "auto" replaced by the choice for `backend` (default: JAX's) and compute `dtype`.

    Raises ValueError for an explicit choice the backend cannot run: a native kernel off the
    CPU, or the native batch norm with a compute dtype other than float32 (its reductions read
    float32 rows). Building the native kernels happens here, on first need.
    """
    import jax  # pylint: disable=g-import-not-at-top
    from mnv2_jax.ops import native  # pylint: disable=g-import-not-at-top

    backend = backend or jax.default_backend()
    wanted = self.to_dict()
    for name, value in wanted.items():
      if NATIVE_ONLY.get(name) == value and backend != "cpu":
        raise ValueError(f"model.impl.{name}={value!r} runs on the CPU backend only (backend "
                         f"here: {backend!r}); use one of "
                         f"{tuple(v for v in CHOICES[name] if v != value) + (AUTO,)}")
    float32 = jnp.dtype(dtype) == jnp.float32
    if wanted["batchnorm"] == "native" and not float32:
      raise ValueError(f"model.impl.batchnorm='native' needs float32 compute (model.dtype is "
                       f"{jnp.dtype(dtype).name}); use 'xla', 'flax' or 'auto'")
    needs_native = any(NATIVE_ONLY.get(n) == v for n, v in wanted.items())
    if needs_native:
      native.ensure_registered()  # Raises NativeBuildError with the compiler's message.
    rules = _AUTO.get(backend, _AUTO["default"])
    have_native = backend == "cpu" and (
        native.available() if AUTO in (wanted["depthwise"], wanted["batchnorm"]) else True)
    out = {}
    for name, value in wanted.items():
      if value == AUTO:
        value = rules[name][0 if have_native else 1]
        if name == "batchnorm" and value == "native" and not float32:
          value = "xla"
      out[name] = value
    return Impl(**out)

  def describe(self) -> str:
    return " ".join(f"{k}={v}" for k, v in self.to_dict().items())


def config_defaults() -> dict[str, str]:
  """The defaults of `config.model.impl` (derived from the dataclass: declared once)."""
  return Impl().to_dict()
