"""The PRNG that draws initial parameters: numpy's generators on the host, behind a JAX key.

Why not a JAX generator: XLA expands every random draw into its own block of integer code
(threefry rounds, or the RngBitGenerator expansion on CPU), and Flax's init makes one draw, and
a few `fold_in`s, per parameter. For MobileNetV2's ~90 kernels that expansion is most of
compiling `train_state.create`. On CPU it took about as long as compiling the train step
(benchmarks/init_compile.py). Here the three PRNG operations are host callbacks into numpy:

- `fold_in` and `split` hash with `np.random.SeedSequence`;
- `random_bits` reads a `np.random.Philox` stream seeded by the key.

Each draw then compiles to a callback plus the initializer's own float transform (jax's
truncated normal, variance scaling). The parameters still come from Flax's and jax's
initializers, called with a key of this implementation
(`jax.random.key(seed, impl=init_prng.IMPL)`), and a traced seed still works.

JAX does not write a program with host callbacks to its persistent compile cache, so each
process compiles the init again. With MobileNetV2 0.35 on CPU that is ~2.6 s, where rbg took
~9 s for a first compile and then loaded from the cache.

The bits depend only on the key, not on the backend, so the same seed gives the same bits on
CPU, GPU and TPU (rbg's did not). The float transform runs on the device. Only initialization
uses this generator. Dropout and data order use threefry keys (`TrainState.rng`).
"""

from __future__ import annotations

import jax
import jax.extend.random as jax_random
import jax.numpy as jnp
import numpy as np

_KEY = jax.ShapeDtypeStruct((2,), np.uint32)
# The SeedSequence spawn-key tags that keep fold_in(k, d), split(k) and the bits of k apart.
_FOLD_IN, _SPLIT, _BITS = 0, 1, 2
_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def _sequence(key, *spawn_key: int) -> np.random.SeedSequence:
  return np.random.SeedSequence([int(w) for w in np.asarray(key)], spawn_key=spawn_key)


def _callback(host, result, *args):
  return jax.pure_callback(host, result, *args, vmap_method="sequential")


def _fold_in(key: jax.Array, data: jax.Array) -> jax.Array:
  host = lambda k, d: _sequence(k, _FOLD_IN, int(d)).generate_state(2, np.uint32)
  return _callback(host, _KEY, key, jnp.asarray(data, jnp.uint32))


def _split(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  count = int(np.prod(shape, dtype=np.int64))
  host = lambda k: _sequence(k, _SPLIT).generate_state(2 * count, np.uint32).reshape(*shape, 2)
  return _callback(host, jax.ShapeDtypeStruct((*shape, 2), np.uint32), key)


def _random_bits(key: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
  dtype = _UINT[bit_width]
  count = int(np.prod(shape, dtype=np.int64))

  def host(k):
    words = -(-count * bit_width // 64)  # 64-bit Philox outputs, cut into bit_width pieces
    raw = np.random.Philox(_sequence(k, _BITS)).random_raw(words)
    return raw.view(dtype)[:count].reshape(shape)

  return _callback(host, jax.ShapeDtypeStruct(shape, dtype), key)


IMPL = jax_random.define_prng_impl(
    key_shape=(2,), seed=jax_random.threefry_prng_impl.seed, split=_split,
    random_bits=_random_bits, fold_in=_fold_in, name="mnv2_jax_init_philox", tag="ip")
