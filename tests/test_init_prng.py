"""mnv2_jax.init_prng: the host-side PRNG behind the initial parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mnv2_jax import init_prng
from mnv2_jax import train_state
from mnv2_jax.models import MobileNetV2


def _key(seed=0):
  return jax.random.key(seed, impl=init_prng.IMPL)


def test_bits_are_uniform_and_a_pure_function_of_the_key():
  bits = np.asarray(jax.random.bits(_key(), (200_000,), jnp.uint32))
  again = np.asarray(jax.jit(lambda k: jax.random.bits(k, (200_000,), jnp.uint32))(_key()))
  np.testing.assert_array_equal(bits, again)  # eager == jit
  # Each of the 32 bit positions is set about half the time (binomial sd 0.0011).
  ones = ((bits[:, None] >> np.arange(32, dtype=np.uint32)) & 1).mean(axis=0)
  assert np.all(np.abs(ones - 0.5) < 0.006), ones
  u = np.asarray(jax.random.uniform(_key(1), (200_000,)))
  assert abs(u.mean() - 0.5) < 0.003 and abs(u.var() - 1 / 12) < 0.001
  assert not np.array_equal(bits, np.asarray(jax.random.bits(_key(1), (200_000,), jnp.uint32)))


@pytest.mark.parametrize("bits_dtype", [jnp.uint8, jnp.uint16])
def test_narrow_bit_widths_are_drawn(bits_dtype):
  bits = np.asarray(jax.random.bits(_key(), (1001,), bits_dtype))
  assert bits.dtype == np.dtype(bits_dtype) and len(np.unique(bits)) > 100


def test_fold_in_and_split_give_distinct_keys():
  data = lambda k: tuple(np.asarray(jax.random.key_data(k)).ravel())
  k = _key()
  folded = [data(jax.random.fold_in(k, i)) for i in range(50)]
  split = [data(s) for s in jax.random.split(k, 50)]
  assert len(set(folded + split + [data(k)])) == 101
  assert data(jax.random.fold_in(k, 7)) == data(jax.jit(jax.random.fold_in)(k, 7))
  # Keys of a traced seed (create's case) are the keys of the Python int.
  traced = jax.jit(lambda s: jax.random.key_data(jax.random.fold_in(_key(s), 3)))(np.int32(5))
  assert tuple(np.asarray(traced)) == data(jax.random.fold_in(_key(5), 3))


def _create(seed, model=None):
  model = model or MobileNetV2(num_classes=10, width_multiplier=0.35)
  return train_state.create(model, optax.sgd(0.1), seed=seed, resolution=32, ema=False)


def test_initial_kernels_follow_the_declared_initializer():
  """kernel_init="slim": truncated normal, stddev 0.09 at +-2 sd (its std is 0.09 * 0.8796)."""
  params = jax.jit(_create)(np.int32(0)).params
  kernels = [np.asarray(x) for x in jax.tree.leaves(params) if x.ndim == 4]
  flat = np.concatenate([k.ravel() for k in kernels])
  assert flat.size > 300_000
  assert abs(flat.std() - 0.09 * 0.87962566) < 0.0005 and abs(flat.mean()) < 0.0005
  assert np.abs(flat).max() <= 0.18 + 1e-6
  # Each kernel is its own draw: no two kernels of one shape are equal.
  by_shape = {}
  for k in kernels:
    for other in by_shape.setdefault(k.shape, []):
      assert not np.array_equal(k, other)
    by_shape[k.shape].append(k)
  he = MobileNetV2(num_classes=10, width_multiplier=0.35, kernel_init="he_normal")
  head = np.asarray(jax.jit(lambda s: _create(s, he))(np.int32(0)).params["logits"]["kernel"])
  fan_in = int(np.prod(head.shape[:-1]))
  assert abs(head.std() / np.sqrt(2 / fan_in) - 1) < 0.1, (head.shape, head.std())


def test_create_is_seeded_and_compiles_no_device_generator():
  """The same state for a traced and a Python seed, another for another seed, and the init
  program holds no XLA random-number generator: its draws are host callbacks."""
  traced = jax.jit(_create)
  a, b = traced(np.int32(3)), jax.jit(lambda: _create(3))()
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(x, y)
  c = traced(np.int32(4))
  assert not np.array_equal(a.params["logits"]["kernel"], c.params["logits"]["kernel"])
  lowered = traced.lower(np.int32(3)).as_text()
  state_key = jax.jit(lambda s: jax.random.key_data(jax.random.fold_in(jax.random.key(s), 1)))
  assert "rng_bit_generator" not in lowered
  # The only threefry left is the state's own key (dropout, data order).
  assert lowered.count("threefry") == state_key.lower(np.int32(3)).as_text().count("threefry")
  kernels = [x for x in jax.tree.leaves(a.params) if x.ndim == 4]
  assert lowered.count("callback") >= len(kernels) > 50
