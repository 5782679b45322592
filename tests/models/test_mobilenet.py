"""Flax MobileNetV2/V1: shapes, batch-norm state, determinism, ablation wiring, errors."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from mnv2_jax import spec as S
from mnv2_jax.models import MobileNetV1, MobileNetV2
from mnv2_jax.ops.impl import Impl

# He init keeps activations O(1) in inference mode at initialisation (running statistics are
# still 0/1 then); with slim's 0.09 truncated normal they shrink to ~1e-11 through 52 layers,
# which would make every closeness check below vacuous.
TINY = dict(width_multiplier=0.35, kernel_init="he_normal")


def _init(model, resolution=32, batch=2, seed=0):
  x = jax.random.normal(jax.random.key(seed + 1), (batch, resolution, resolution, 3))
  return jax.jit(lambda: model.init(jax.random.key(seed), x, train=False))(), x


@pytest.fixture(scope="module")
def tiny():
  """Variables of the tiny V2 (shared: every variant has the same tree) and a 64x64 batch."""
  return _init(MobileNetV2(**TINY), 64)


# Every width at 224 and every resolution at width 1.0 (tests/test_spec.py covers the full grid).
@pytest.mark.parametrize("width, resolution",
                         [(w, 224) for w in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)]
                         + [(1.0, r) for r in (96, 128, 160, 192)])
def test_shapes_every_width_and_resolution(width, resolution):
  model = MobileNetV2(width_multiplier=width, num_classes=1001)
  x = jnp.zeros((1, resolution, resolution, 3))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  logits = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  assert logits.shape == (1, 1001) and logits.dtype == jnp.float32
  arch = model.spec(resolution)
  params = variables["params"]
  for layer in arch.layers:
    if layer.op == "dense":
      assert params["logits"]["kernel"].shape == (layer.in_channels, 1001)
      continue
    kernel = params[layer.scope][layer.name]["conv"]["kernel"]
    assert kernel.shape == (layer.kernel, layer.kernel, layer.in_channels // layer.groups,
                            layer.out_channels)


def test_forward_runs_and_is_deterministic_in_inference(tiny):
  model = MobileNetV2(**TINY)
  variables, x = tiny
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
  a, b = apply(variables, x), apply(variables, x)
  assert a.shape == (2, 1000) and np.abs(a).max() > 1.0
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Inference is per-example: a batch of one gives the same logits as in the batch.
  np.testing.assert_allclose(np.asarray(apply(variables, x[:1])), np.asarray(a[:1]),
                             rtol=1e-5, atol=1e-5)


def test_batch_stats_follow_tf_momentum_rule_only_in_training(tiny):
  model = MobileNetV2(**TINY)
  variables, x = tiny
  # Non-zero running statistics (init gives mean 0, var 1), so that a rule which drops or
  # mis-weights the old value is visible.
  rng = np.random.default_rng(0)
  old = jax.tree.map(lambda a: jnp.asarray(rng.uniform(0.5, 1.5, a.shape), jnp.float32),
                     variables["batch_stats"])
  variables = {**variables, "batch_stats": old}
  _, state = jax.jit(lambda v, x: model.apply(
      v, x, train=True, mutable=["batch_stats", "intermediates"], capture_intermediates=True,
      rngs={"dropout": jax.random.key(3)}))(variables, x)
  m = model.bn_momentum
  layers = [l for l in model.spec(x.shape[1]).layers if l.op != "dense"]
  assert len(layers) == len(jax.tree.leaves(old)) // 2
  for layer in layers:
    # The batch norm's input is its conv's output; its batch moments computed here in float64.
    bn_in = np.asarray(state["intermediates"][layer.scope][layer.name]["conv"]["__call__"][0],
                       np.float64)
    ra = old[layer.scope][layer.name]["bn"]
    new = state["batch_stats"][layer.scope][layer.name]["bn"]
    np.testing.assert_allclose(new["mean"], m * ra["mean"] + (1 - m) * bn_in.mean((0, 1, 2)),
                               rtol=1e-5, atol=1e-6, err_msg=layer.path)
    np.testing.assert_allclose(new["var"], m * ra["var"] + (1 - m) * bn_in.var((0, 1, 2)),
                               rtol=1e-5, atol=1e-6, err_msg=layer.path)
  _, state = jax.jit(lambda v, x: model.apply(v, x, train=False, mutable=["batch_stats"]))(
      variables, x)
  jax.tree.map(np.testing.assert_array_equal, state["batch_stats"], old)


def test_dropout_active_only_in_training(tiny):
  model = MobileNetV2(**TINY, dropout_rate=0.5)
  variables, x = tiny
  train = jax.jit(lambda k: model.apply(variables, x, train=True, mutable=["batch_stats"],
                                        rngs={"dropout": jax.random.key(k)})[0])
  a = train(0)
  assert not np.allclose(a, train(1))
  np.testing.assert_array_equal(train(0), a)   # the key, not chance, decides the mask
  # Inference: no dropout whatever key is supplied, i.e. the forward of a dropout-free model.
  infer = jax.jit(lambda k: model.apply(variables, x, train=False,
                                        rngs={"dropout": jax.random.key(k)}))
  no_dropout = MobileNetV2(**TINY, dropout_rate=0.0)
  reference = jax.jit(lambda v: no_dropout.apply(v, x, train=False))(variables)
  assert np.abs(reference).max() > 1.0
  first = infer(0)
  np.testing.assert_array_equal(infer(1), first)
  # Not bit-equal: a different program (XLA may fuse differently); dropout would differ by O(1).
  np.testing.assert_allclose(first, reference, rtol=1e-4, atol=1e-4)


def _group_outputs(model, variables, x):
  _, state = model.apply(variables, x, train=False, capture_intermediates=True,
                         mutable=["intermediates"])
  return state["intermediates"]


def test_expansion_shortcut_wiring_is_definition_a(tiny):
  model = MobileNetV2(**TINY, shortcut="expansion")
  variables, x = tiny
  inter = _group_outputs(model, variables, x)
  # block_2 is residual: block_3's expansion input receives block_2's (summed) expansion tensor.
  e3_conv = inter["block_3"]["expand"]["__call__"][0]        # ReLU6(BN(conv)) of block_3
  e2_sum = inter["block_2"]["__call__"][0]["block_2/expand"]  # e_2 (+ nothing: block_1 s=2)
  e3_sum = inter["block_3"]["__call__"][0]["block_3/expand"]
  np.testing.assert_allclose(e3_sum, e3_conv + e2_sum, rtol=1e-6, atol=1e-6)
  # Chains: block_4 and block_5 are residual, so e~_6 = e_6 + e_5 + e_4 + e_3 (+ e_2 ...).
  e6_sum = inter["block_6"]["__call__"][0]["block_6/expand"]
  e6_conv = inter["block_6"]["expand"]["__call__"][0]
  e5_sum = inter["block_5"]["__call__"][0]["block_5/expand"]
  np.testing.assert_allclose(e6_sum, e6_conv + e5_sum, rtol=1e-6, atol=1e-6)
  # No add on the thin tensors: block output == projection ConvBNAct output.
  proj = inter["block_2"]["project"]["__call__"][0]
  np.testing.assert_array_equal(inter["block_2"]["__call__"][0]["block_2/project"], proj)


def test_bottleneck_shortcut_adds_block_input(tiny):
  model = MobileNetV2(**TINY)
  variables, x = tiny
  inter = _group_outputs(model, variables, x)
  proj = inter["block_2"]["project"]["__call__"][0]
  block_1_out = inter["block_1"]["__call__"][0]["block_1/project"]
  np.testing.assert_allclose(inter["block_2"]["__call__"][0]["block_2/project"],
                             proj + block_1_out, rtol=1e-6, atol=1e-6)


def test_relu6_bottleneck_clips_projection(tiny):
  model = MobileNetV2(**TINY, bottleneck_activation="relu6", shortcut="none")
  variables, x = tiny
  inter = _group_outputs(model, variables, x)
  proj = np.asarray(inter["block_5"]["project"]["__call__"][0])
  assert proj.min() >= 0 and proj.max() <= 6
  linear = _group_outputs(MobileNetV2(**TINY, shortcut="none"), variables, x)
  assert np.asarray(linear["block_5"]["project"]["__call__"][0]).min() < 0


def test_variants_share_parameters_but_compute_different_functions(tiny):
  variables, x = tiny
  outputs = []
  for act in S.BOTTLENECK_ACTIVATIONS:
    for shortcut in S.SHORTCUTS:
      model = MobileNetV2(**TINY, bottleneck_activation=act, shortcut=shortcut)
      shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
      assert jax.tree.structure(shapes) == jax.tree.structure(variables)
      outputs.append(np.asarray(model.apply(variables, x, train=False)))
  assert np.abs(outputs[0]).max() > 1.0
  for i in range(len(outputs)):
    for j in range(i):
      assert not np.allclose(outputs[i], outputs[j], rtol=1e-3, atol=1e-3)


def _operand_dtypes(jaxpr, primitives):
  """Operand dtypes of every equation of `primitives` in `jaxpr` and its sub-jaxprs."""
  out = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in primitives:
      out += [v.aval.dtype for v in eqn.invars]
    for param in eqn.params.values():
      for sub in param if isinstance(param, (list, tuple)) else (param,):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          out += _operand_dtypes(sub.jaxpr, primitives)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          out += _operand_dtypes(sub, primitives)
  return out


def test_bfloat16_compute_keeps_float32_params(tiny):
  variables, x = tiny
  # The bfloat16 model's own variables (traced, not compiled): float32, same tree as float32's.
  bf16 = MobileNetV2(**TINY, dtype="bfloat16")
  shapes = jax.eval_shape(lambda: bf16.init(jax.random.key(0), x, train=False))
  assert jax.tree.structure(shapes) == jax.tree.structure(variables)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(shapes))

  def run(dtype):
    model = MobileNetV2(**TINY, dtype=dtype)
    fn = jax.jit(lambda v, x: model.apply(v, x, train=False, capture_intermediates=True,
                                          mutable=["intermediates"]))
    logits, state = fn(variables, x)
    return logits, state["intermediates"]["block_3"]["__call__"][0]["block_3/project"]

  # The XLA convolutions and matmuls take bfloat16 operands (the native CPU depthwise kernels,
  # ffi calls, compute in float32 by design: ops/depthwise.py).
  jaxpr = jax.make_jaxpr(lambda v, x: bf16.apply(v, x, train=False))(variables, x)
  operands = _operand_dtypes(jaxpr.jaxpr, ("conv_general_dilated", "dot_general"))
  assert operands and set(operands) == {jnp.dtype(jnp.bfloat16)}, set(operands)

  logits, mid = run("bfloat16")
  ref_logits, ref_mid = run("float32")
  assert logits.dtype == jnp.float32 and mid.dtype == jnp.bfloat16
  assert ref_mid.dtype == jnp.float32
  assert np.all(np.isfinite(logits))
  # bf16 has an 8-bit mantissa: ~1% relative error after 11 layers (measured 0.96%). The final
  # logits of a random, untrained network are too chaotic to compare tightly.
  rel = np.linalg.norm(np.asarray(mid, np.float32) - ref_mid) / np.linalg.norm(ref_mid)
  assert 0 < rel < 0.03


def test_depthwise_impls_agree_in_full_model(tiny):
  variables, x = tiny
  x = x[:, :33, :33]  # odd size: TF SAME pads 1/1 at stride 2
  outs = [np.asarray(MobileNetV2(**TINY, impl=Impl(depthwise=impl)).apply(variables, x, train=False))
          for impl in ("xla", "taps")]
  np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)


@pytest.mark.slow(seconds=42)
def test_depthwise_kernel_5_through_every_depthwise_implementation():
  """5x5 depthwise (`depthwise_kernel=5`): kernels (5, 5, 1, C), the same function whichever
  formulation computes it (each is checked against numpy per op in tests/ops)."""
  kw = dict(**TINY, depthwise_kernel=5)
  variables, x = _init(MobileNetV2(**kw), 33)
  kernels = [v for p, v in jax.tree_util.tree_flatten_with_path(variables["params"])[0]
             if jax.tree_util.keystr(p).endswith("['depthwise']['conv']['kernel']")]
  assert len(kernels) == 17 and all(k.shape[:3] == (5, 5, 1) for k in kernels)

  def logits(impl):
    model = MobileNetV2(**kw, impl=Impl(depthwise=impl))
    return np.asarray(jax.jit(lambda v: model.apply(v, x, train=False))(variables))

  ref = logits("xla")
  for impl in ("taps", "taps_vjp", "native"):
    np.testing.assert_allclose(logits(impl), ref, rtol=1e-5, atol=1e-5, err_msg=impl)


def test_mobilenet_v1_forward():
  model = MobileNetV1(width_multiplier=0.25, num_classes=10)
  variables, x = _init(model, 32)
  assert jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x).shape == (2, 10)
  assert "pointwise" in variables["params"]["block_12"]


@pytest.mark.parametrize("kwargs, field", [
    (dict(bottleneck_activation="gelu"), "bottleneck_activation"),
    (dict(shortcut="dense"), "shortcut"),
    (dict(width_multiplier=0.0), "width_multiplier"),
    (dict(width_multiplier=-0.5), "width_multiplier"),
    (dict(dtype="float64"), "dtype"),
    (dict(impl="native"), "impl must be an mnv2_jax.ops.impl.Impl"),
    (dict(kernel_init="zeros"), "kernel_init"),
    (dict(dropout_rate=1.0), "dropout_rate"),
    (dict(expansion_factor=1, shortcut="expansion"), "cannot be wired"),
    (dict(depthwise_kernel=7), r"model.depthwise_kernel must be one of \(3, 5\)"),
    (dict(depthwise_kernel=True), r"model.depthwise_kernel must be one of"),
    (dict(depthwise_kernel=3.5), r"model.depthwise_kernel must be one of \(3, 5\), got 3.5"),
    (dict(expansion_factor="six"), r"model.expansion_factor must be a number >= 1"),
])
def test_bad_fields_raise_at_construction(kwargs, field):
  with pytest.raises(ValueError, match=field):
    MobileNetV2(**kwargs)


def test_small_resolution_rejected_before_compile():
  model = MobileNetV2(**TINY)
  with pytest.raises(ValueError, match="resolution must be >= 32"):
    model.init(jax.random.key(0), jnp.zeros((1, 31, 31, 3)), train=False)
