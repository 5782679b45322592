"""Tests for mnv2_jax.ema against tf.compat.v1.train.ExponentialMovingAverage."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnv2_jax import ema

# Update steps fed as num_updates: early warm-up, the hand-over to the nominal
# decay at (1 + s) / (10 + s) = 0.9999 <=> s = 89_990, and beyond it.
STEPS = (0, 1, 2, 3, 5, 10, 100, 1000, 89_000, 89_990, 95_000, 200_000)


def _trees(seed=0):
  """A {'params', 'batch_stats'} tree per step (the trainer averages both)."""
  rng = np.random.default_rng(seed)
  def tree():
    return {
        "params": {"conv": {"kernel": rng.standard_normal((3, 3, 1, 4))},
                   "bn": {"scale": rng.standard_normal(4)}},
        "batch_stats": {"bn": {"mean": rng.standard_normal(4),
                               "var": rng.uniform(0.5, 2.0, 4)}},
    }
  cast = lambda t: jax.tree.map(lambda x: x.astype(np.float32), t)
  return cast(tree()), [cast(tree()) for _ in STEPS]


def _leaves(tree):
  return jax.tree_util.tree_leaves(tree)


def _run_tf(init, seq, decay, use_num_updates):
  """Shadow values after each tf EMA apply; variables set to seq[t] first."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  v1 = tf.compat.v1
  init_leaves = _leaves(init)
  graph = tf.Graph()
  with graph.as_default():
    tvars = [v1.Variable(x) for x in init_leaves]
    feeds = [v1.placeholder(tf.float32, x.shape) for x in init_leaves]
    assign = tf.group(*[v.assign(f) for v, f in zip(tvars, feeds)])
    step = v1.placeholder(tf.int64, [])
    averager = v1.train.ExponentialMovingAverage(
        decay, num_updates=step if use_num_updates else None)
    apply_op = averager.apply(tvars)
    shadows = [averager.average(v) for v in tvars]
    out = []
    with v1.Session(graph=graph) as sess:
      sess.run(v1.global_variables_initializer())
      for s, new in zip(STEPS, seq):
        sess.run(assign, dict(zip(feeds, _leaves(new))))
        sess.run(apply_op, {step: s})
        out.append(sess.run(shadows))
  return out


@pytest.mark.parametrize("use_num_updates", [True, False])
def test_matches_tf_exponential_moving_average(use_num_updates):
  init, seq = _trees()
  tf_out = _run_tf(init, seq, 0.9999, use_num_updates)
  update = jax.jit(lambda e, n, s: ema.ema_update(
      e, n, s, 0.9999, num_updates_warmup=use_num_updates))
  avg = init  # TF starts the shadow at the variable's initial value.
  for t, (s, new) in enumerate(zip(STEPS, seq)):
    avg = update(avg, new, jnp.asarray(s, jnp.int32))
    for a, b in zip(_leaves(avg), tf_out[t]):
      np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7,
                                 err_msg=f"step {s}")


def test_tf_comparison_detects_missing_warmup():
  """Control: a constant 0.9999 decay must not pass the num_updates check."""
  init, seq = _trees()
  tf_out = _run_tf(init, seq[:1], 0.9999, use_num_updates=True)
  avg = ema.ema_update(init, seq[0], 0, 0.9999, num_updates_warmup=False)
  assert not np.allclose(_leaves(avg)[0], tf_out[0][0], rtol=1e-3)


def test_ema_decay_values():
  assert float(ema.ema_decay(0, 0.9999)) == pytest.approx(0.1)
  assert float(ema.ema_decay(1, 0.9999)) == pytest.approx(2 / 11)
  assert float(ema.ema_decay(90, 0.9999)) == pytest.approx(0.91)
  assert float(ema.ema_decay(10**6, 0.9999)) == pytest.approx(0.9999)
  assert float(ema.ema_decay(0, 0.9999, num_updates_warmup=False)) == (
      pytest.approx(0.9999))


def test_zero_decay_disables():
  init, seq = _trees()
  out = ema.ema_update(init, seq[0], 5, 0.0)
  assert out is seq[0]


def test_preserves_dtype_and_structure():
  tree = {"a": jnp.ones(3, jnp.bfloat16), "b": {"c": jnp.zeros(2)}}
  new = jax.tree.map(lambda x: x + 1, tree)
  out = jax.jit(lambda e, n, s: ema.ema_update(e, n, s, 0.5))(tree, new, 10**6)
  assert jax.tree.structure(out) == jax.tree.structure(tree)
  assert out["a"].dtype == jnp.bfloat16
  np.testing.assert_allclose(out["b"]["c"], 0.5)
