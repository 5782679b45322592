"""`ops.impl.Impl`: one typed choice of op formulations, validated, resolved per backend, applied.

The last test is the point of the object: every formulation computes the same model (values
and gradients) from the same variables, so the accelerator path can be trained and checked on
a CPU.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from mnv2_jax import train_state
from mnv2_jax.models import MobileNetV2
from mnv2_jax.ops import impl as impl_lib
from mnv2_jax.ops import native
from mnv2_jax.ops.impl import Impl

ACCELERATOR = Impl(depthwise="xla", batchnorm="xla", pointwise="dot")


@pytest.mark.parametrize("field", sorted(impl_lib.CHOICES))
def test_bad_value_names_field_and_allowed_values(field):
  with pytest.raises(ValueError, match=rf"model\.impl\.{field} must be one of .*'auto'"):
    Impl(**{field: "cudnn"})


def test_from_config_rejects_unknown_keys_and_takes_config_defaults():
  with pytest.raises(ValueError, match=r"unknown keys \['conv'\]; allowed: \('depthwise'"):
    Impl.from_config({"conv": "xla"})
  config_impl = common.model_config().impl
  assert Impl.from_config(config_impl) == Impl()  # Defaults are declared once, in Impl.
  assert dict(config_impl) == Impl().to_dict()


def test_auto_per_backend():
  assert Impl().resolve("gpu") == ACCELERATOR.resolve("gpu") == Impl(
      depthwise="xla", batchnorm="xla", pointwise="dot", partition="sharded")
  assert Impl().resolve("tpu") == Impl().resolve("gpu")
  cpu = Impl().resolve("cpu")
  assert cpu == Impl(depthwise="native", batchnorm="native", pointwise="cpu_vjp",
                     partition="sharded"), native.unavailable_reason()
  # The native batch norm reads float32 rows: bfloat16 compute keeps the XLA batch norm.
  assert Impl().resolve("cpu", jnp.bfloat16).batchnorm == "xla"
  assert cpu.is_resolved and not Impl().is_resolved
  # Explicit choices are kept as they are.
  assert ACCELERATOR.resolve("cpu") == Impl(depthwise="xla", batchnorm="xla", pointwise="dot",
                                            partition="sharded")


def test_auto_without_native_kernels_falls_back_to_pure_xla(monkeypatch):
  monkeypatch.setattr(native, "available", lambda: False)  # As on a machine without g++.
  assert Impl().resolve("cpu") == Impl(depthwise="taps_vjp", batchnorm="xla",
                                       pointwise="cpu_vjp", partition="sharded")


@pytest.mark.parametrize("impl, dtype, message", [
    (Impl(depthwise="native"), jnp.float32, r"impl.depthwise='native' runs on the CPU backend"),
    (Impl(batchnorm="native"), jnp.float32, r"impl.batchnorm='native' runs on the CPU backend"),
])
def test_native_off_cpu_is_an_error(impl, dtype, message):
  with pytest.raises(ValueError, match=message):
    impl.resolve("gpu", dtype)


def test_native_batchnorm_with_bfloat16_is_an_error():
  with pytest.raises(ValueError, match="batchnorm='native' needs float32 compute"):
    Impl(batchnorm="native").resolve("cpu", "bfloat16")


def test_config_selects_impl_and_legacy_depthwise_impl_still_reads():
  cfg = common.model_config(width=0.35)
  cfg.impl.depthwise, cfg.impl.pointwise = "xla", "dot"
  model = train_state.build_model(cfg, num_classes=10)
  assert model.impl == Impl(depthwise="xla", pointwise="dot")
  legacy = {k: v for k, v in cfg.to_dict().items() if k != "impl"}
  legacy["depthwise_impl"] = "taps"  # config.json written before model.impl existed
  assert train_state.build_model(legacy, num_classes=10).impl == Impl(depthwise="taps")
  cfg.impl.batchnorm = "cudnn"
  with pytest.raises(ValueError, match="model.impl.batchnorm must be one of"):
    train_state.build_model(cfg, num_classes=10)


def _hlo(impl: Impl, x, variables, model_kw) -> str:
  model = MobileNetV2(**model_kw, impl=impl)
  loss = lambda p: jnp.sum(model.apply({**variables, "params": p}, x, train=True,
                                       mutable=["batch_stats"])[0])
  return jax.jit(jax.grad(loss)).lower(variables["params"]).as_text()


@pytest.mark.slow(seconds=39)
def test_each_choice_changes_the_program_as_documented():
  kw = dict(width_multiplier=0.35, num_classes=10, dropout_rate=0.0)
  x = jnp.ones((2, 32, 32, 3))
  variables = jax.jit(lambda: MobileNetV2(**kw).init(jax.random.key(0), x, train=False))()
  cpu = _hlo(Impl(depthwise="native", batchnorm="native"), x, variables, kw)
  acc = _hlo(ACCELERATOR, x, variables, kw)
  assert "Mnv2DepthwiseForward" in cpu and "Mnv2BnMoments" in cpu
  assert "Mnv2" not in acc and "feature_group_count" in acc
  # The pointwise choice: only "cpu_vjp" wraps the 1x1 convs in a custom VJP.
  def custom_vjps(pointwise):
    model = MobileNetV2(**kw, impl=Impl(depthwise="xla", batchnorm="xla", pointwise=pointwise))
    return str(jax.make_jaxpr(lambda v: model.apply(v, x, train=False))(variables)).count(
        "custom_vjp_call")
  assert custom_vjps("dot") == 0 and custom_vjps("cpu_vjp") > 10


@pytest.mark.slow(seconds=84)
def test_every_formulation_computes_the_same_model():
  """Train-mode loss and batch statistics, and gradients, agree across formulations (float32).

  Gradients are compared in inference mode. In training mode at random init the deep layers'
  batch norms see near-constant inputs (the last stages are 1x1 or 2x2 spatially) and divide
  by tiny standard deviations, so round-off from a different summation order grows to ~3% of
  the largest gradient (measured at 64x64, batch 8), although the loss agrees to ~1e-6. Each
  op's own training-mode gradient is checked tightly in tests/ops (test_batchnorm,
  test_depthwise, test_pointwise).
  """
  kw = dict(width_multiplier=0.35, num_classes=10, dropout_rate=0.0)
  x = jax.random.normal(jax.random.key(0), (8, 32, 32, 3))
  variables = jax.jit(lambda: MobileNetV2(**kw).init(jax.random.key(1), x, train=False))()

  def run(impl):
    model = MobileNetV2(**kw, impl=impl)

    def train_loss(params):
      logits, upd = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                                train=True, mutable=["batch_stats"])
      return jnp.sum(jnp.sin(logits)), upd["batch_stats"]

    def eval_loss(params):
      return jnp.sum(jnp.sin(model.apply({**variables, "params": params}, x, train=False)))

    val, stats = jax.jit(train_loss)(variables["params"])
    grads = jax.jit(jax.grad(eval_loss))(variables["params"])
    return val, stats, grads

  ref = run(ACCELERATOR)
  # (Every depthwise formulation is also compared in test_depthwise.py.)
  for impl in (Impl(depthwise="native", batchnorm="native", pointwise="cpu_vjp"),
               Impl(depthwise="taps_vjp", batchnorm="flax", pointwise="dot")):
    val, stats, grads = run(impl)
    np.testing.assert_allclose(val, ref[0], rtol=1e-4, err_msg=impl.describe())
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4), stats,
                 ref[1])
    flat, flat_ref = jax.tree.leaves(grads), jax.tree.leaves(ref[2])
    assert len(flat) == len(flat_ref) > 100
    scale = max(float(jnp.max(jnp.abs(b))) for b in flat_ref)
    for a, b in zip(flat, flat_ref):
      np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * scale, err_msg=impl.describe())
