"""Tests for mnv2_jax.optim: schedules, weight-decay mask, and parity with TF1 optimizers.

The parity tests run TensorFlow's own ``tf.compat.v1.train`` optimizers in a
graph-mode Session on the same parameter tree and gradients, with TF computing
the L2 term itself (``wd * tf.nn.l2_loss``) and the LR from
``tf.compat.v1.train.exponential_decay``; every step's parameters must agree.
"""

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from mnv2_jax import optim

STEPS_PER_EPOCH = 4
NUM_STEPS = 20


def _cfg(**overrides):
  cfg = ml_collections.ConfigDict(dict(
      name="rmsprop_tf", base_lr=0.045, base_batch_size=96,
      schedule="exponential", decay_rate=0.98, decay_epochs=1.0, staircase=True,
      warmup_epochs=0.0, momentum=0.9, rmsprop_decay=0.9, rmsprop_eps=1.0,
      nesterov=False, weight_decay=4e-5, grad_clip_norm=0.0,
      label_smoothing=0.1, ema_decay=0.9999))
  cfg.update(overrides)
  return cfg


def _toy_params(seed=0, scale=1.0, dtype=np.float32):
  """Hand-built tree with the MobileNetV2 module nesting."""
  rng = np.random.default_rng(seed)
  n = lambda *s: (scale * rng.standard_normal(s)).astype(dtype)
  return {
      "stem": {"conv": {"kernel": n(3, 3, 3, 4)},
               "bn": {"scale": n(4), "bias": n(4)}},
      "block_3": {
          "expand": {"conv": {"kernel": n(1, 1, 4, 8)},
                     "bn": {"scale": n(8), "bias": n(8)}},
          "depthwise": {"conv": {"kernel": n(3, 3, 1, 8)},
                        "bn": {"scale": n(8), "bias": n(8)}},
          "project": {"conv": {"kernel": n(1, 1, 8, 4)},
                      "bn": {"scale": n(4), "bias": n(4)}},
      },
      "head": {"conv": {"kernel": n(1, 1, 4, 6)},
               "bn": {"scale": n(6), "bias": n(6)}},
      "logits": {"kernel": n(6, 5), "bias": n(5)},
  }


# Written out by hand (not derived from optim.decays_weight) so the TF oracle
# is independent of the code under test.
DECAYED = {
    "stem/conv/kernel", "block_3/expand/conv/kernel",
    "block_3/project/conv/kernel", "head/conv/kernel", "logits/kernel",
}


def _flat(tree):
  return flax.traverse_util.flatten_dict(tree, sep="/")


# ------------------------------------------------------------------ schedules


def test_peak_lr_scales_linearly_with_batch():
  cfg = _cfg()
  assert optim.peak_learning_rate(cfg, global_batch_size=96) == pytest.approx(0.045)
  assert optim.peak_learning_rate(cfg, global_batch_size=768) == pytest.approx(0.36)


@pytest.mark.parametrize("decay_epochs,decay_steps", [(1.0, 100), (2.5, 250)])
def test_exponential_staircase_values(decay_epochs, decay_steps):
  cfg = _cfg(decay_epochs=decay_epochs)
  sched = optim.lr_schedule(cfg, steps_per_epoch=100, global_batch_size=192,
                            total_steps=10_000)
  peak = 0.09
  assert float(sched(0)) == pytest.approx(peak, rel=1e-6)
  assert float(sched(decay_steps - 1)) == pytest.approx(peak, rel=1e-6)
  assert float(sched(decay_steps)) == pytest.approx(peak * 0.98, rel=1e-6)
  assert float(sched(3 * decay_steps + 1)) == pytest.approx(peak * 0.98**3, rel=1e-6)


def test_exponential_smooth_when_not_staircase():
  cfg = _cfg(staircase=False)
  sched = optim.lr_schedule(cfg, steps_per_epoch=100, global_batch_size=96,
                            total_steps=1000)
  assert float(sched(50)) == pytest.approx(0.045 * 0.98**0.5, rel=1e-6)


def test_poly_is_deeplabs_learning_policy():
  cfg = _cfg(schedule="poly", poly_power=0.9)
  sched = optim.lr_schedule(cfg, steps_per_epoch=100, global_batch_size=96, total_steps=1000)
  assert float(sched(0)) == pytest.approx(0.045)
  assert float(sched(500)) == pytest.approx(0.045 * 0.5**0.9, rel=1e-5)
  assert float(sched(1000)) == pytest.approx(0.0, abs=1e-9)
  with pytest.raises(ValueError, match="poly_power"):
    optim.check_fields(_cfg(schedule="poly", poly_power=0.0))


def test_exponential_with_warmup_counts_decay_from_warmup_end():
  cfg = _cfg(warmup_epochs=2.0)
  sched = optim.lr_schedule(cfg, steps_per_epoch=100, global_batch_size=96,
                            total_steps=10_000)
  assert float(sched(0)) == 0.0
  assert float(sched(100)) == pytest.approx(0.0225, rel=1e-6)
  assert float(sched(200)) == pytest.approx(0.045, rel=1e-6)  # warm-up end
  assert float(sched(299)) == pytest.approx(0.045, rel=1e-6)
  assert float(sched(300)) == pytest.approx(0.045 * 0.98, rel=1e-6)


def test_cosine_values():
  cfg = _cfg(schedule="cosine", warmup_epochs=1.0)
  sched = optim.lr_schedule(cfg, steps_per_epoch=100, global_batch_size=96,
                            total_steps=1100)
  assert float(sched(0)) == 0.0
  assert float(sched(50)) == pytest.approx(0.0225, rel=1e-6)
  assert float(sched(100)) == pytest.approx(0.045, rel=1e-6)  # warm-up end
  assert float(sched(600)) == pytest.approx(0.0225, rel=1e-5)  # half way
  assert float(sched(1100)) == pytest.approx(0.0, abs=1e-9)  # cosine end
  assert float(sched(5000)) == pytest.approx(0.0, abs=1e-9)


def test_cosine_without_warmup_starts_at_peak():
  cfg = _cfg(schedule="cosine")
  sched = optim.lr_schedule(cfg, steps_per_epoch=10, global_batch_size=96,
                            total_steps=100)
  assert float(sched(0)) == pytest.approx(0.045, rel=1e-6)
  assert float(sched(50)) == pytest.approx(0.0225, rel=1e-5)
  assert float(sched(100)) == pytest.approx(0.0, abs=1e-9)


def test_constant_with_warmup():
  cfg = _cfg(schedule="constant", warmup_epochs=0.5)
  sched = optim.lr_schedule(cfg, steps_per_epoch=10, global_batch_size=96,
                            total_steps=100)
  assert float(sched(0)) == 0.0
  assert float(sched(5)) == pytest.approx(0.045, rel=1e-6)
  assert float(sched(99)) == pytest.approx(0.045, rel=1e-6)


@pytest.mark.parametrize("field,value", [("name", "lamb"),
                                         ("schedule", "linear")])
def test_unknown_choice_raises_naming_field_and_choices(field, value):
  cfg = _cfg(**{field: value})
  with pytest.raises(ValueError, match=rf"optim\.{field}.*{value}") as err:
    optim.make_optimizer(cfg, steps_per_epoch=10, global_batch_size=96,
                         total_steps=100)
  allowed = optim.OPTIMIZERS if field == "name" else optim.SCHEDULES
  for choice in allowed:
    assert choice in str(err.value)


def test_warmup_longer_than_run_raises():
  with pytest.raises(ValueError, match="warmup_epochs"):
    optim.lr_schedule(_cfg(warmup_epochs=20.0), steps_per_epoch=10,
                      global_batch_size=96, total_steps=100)


# ------------------------------------------------------------------ mask


def test_weight_decay_mask_by_path():
  params = _toy_params()
  mask = _flat(optim.weight_decay_mask(params))
  assert set(mask) == set(_flat(params))
  assert {k for k, v in mask.items() if v} == DECAYED
  assert not mask["block_3/depthwise/conv/kernel"]
  assert not mask["logits/bias"]
  assert not any(v for k, v in mask.items() if "/bn/" in k)


def test_weight_decay_mask_on_frozen_dict_and_optax_callable():
  params = flax.core.freeze(_toy_params())
  mask = optim.weight_decay_mask(params)
  assert mask["block_3"]["expand"]["conv"]["kernel"] is True
  assert mask["block_3"]["depthwise"]["conv"]["kernel"] is False
  # As a callable mask inside optax: zero gradients, only decayed leaves move.
  tx = optax.add_decayed_weights(0.5, mask=optim.weight_decay_mask)
  updates = _zero_grad_updates(tx, params)
  for k, u in _flat(flax.core.unfreeze(updates)).items():
    assert bool(jnp.any(u != 0)) == (k in DECAYED), k


def _zero_grad_updates(tx, params):
  """First update of ``tx`` for all-zero gradients (one jit, not eager ops)."""
  @jax.jit
  def first_update(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return tx.update(zeros, tx.init(params), params)[0]
  return jax.device_get(first_update(params))


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_weight_decay_only_moves_masked_leaves(name):
  cfg = _cfg(name=name, weight_decay=0.1)
  tx, _ = optim.make_optimizer(cfg, steps_per_epoch=10, global_batch_size=96,
                               total_steps=100)
  updates = _zero_grad_updates(tx, _toy_params())
  for k, u in _flat(updates).items():
    assert bool(jnp.any(u != 0)) == (k in DECAYED), k


def test_grad_clip_norm():
  cfg = _cfg(name="sgd", momentum=0.0, schedule="constant", weight_decay=0.0,
             grad_clip_norm=1.0, base_lr=0.5)
  tx, _ = optim.make_optimizer(cfg, steps_per_epoch=10, global_batch_size=96,
                               total_steps=100)
  params = {"w": jnp.zeros(4)}
  grads = {"w": jnp.array([6.0, 8.0, 0.0, 0.0])}  # norm 10
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["w"], [-0.3, -0.4, 0.0, 0.0], rtol=1e-6)


# ------------------------------------------------------------------ TF parity


def _run_tf(make_tf_opt, params, grads_seq, *, wd, lr0, decay_steps,
            decay_rate):
  """Runs a tf.compat.v1 optimizer; returns the flat params after each step."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  v1 = tf.compat.v1
  flat = _flat(params)
  names = sorted(flat)
  dtype = tf.as_dtype(flat[names[0]].dtype)
  graph = tf.Graph()
  with graph.as_default():
    global_step = v1.train.get_or_create_global_step()
    # Computed in float32 and cast to the variable dtype by the optimizer; optax
    # also evaluates schedules in float32 (int32 step count), even under x64.
    lr = v1.train.exponential_decay(lr0, global_step, decay_steps, decay_rate,
                                    staircase=True)
    tvars = {n: v1.Variable(flat[n], name=f"v{i}") for i, n in enumerate(names)}
    feeds = {n: v1.placeholder(dtype, flat[n].shape) for n in names}
    # d/dw of sum(g * w) is the fed gradient; slim's L2 loss adds wd * w.
    loss = tf.add_n([tf.reduce_sum(feeds[n] * tvars[n]) for n in names])
    loss += wd * tf.add_n([tf.nn.l2_loss(tvars[n]) for n in names
                           if n in DECAYED])
    train_op = make_tf_opt(lr).minimize(loss, global_step=global_step)
    history = []
    with v1.Session(graph=graph) as sess:
      sess.run(v1.global_variables_initializer())
      for grads in grads_seq:
        gflat = _flat(grads)
        sess.run(train_op, {feeds[n]: gflat[n] for n in names})
        history.append(sess.run(tvars))
  return history


def _run_optax(tx, params, grads_seq):
  params = jax.tree.map(jnp.asarray, params)
  state = tx.init(params)

  @jax.jit
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  history = []
  for grads in grads_seq:
    params, state = step(params, state, grads)
    history.append(_flat(jax.device_get(params)))
  return history


def _grads_seq(scale, dtype=np.float32):
  return [_toy_params(seed=100 + t, scale=scale, dtype=dtype)
          for t in range(NUM_STEPS)]


def _assert_histories_close(jax_hist, tf_hist, tol=1e-6):
  # Params are O(1); in float32 the two agree to 1-2 ulp (|diff| <= 2.4e-7),
  # so tol is an absolute and a relative bound.
  for t, (a, b) in enumerate(zip(jax_hist, tf_hist)):
    for n in a:
      assert a[n].dtype == b[n].dtype, n
      np.testing.assert_allclose(a[n], b[n], rtol=tol, atol=tol,
                                 err_msg=f"step {t + 1}, {n}")


@pytest.mark.parametrize("decay_epochs,wd,dtype", [
    (1.0, 4e-5, np.float32),   # paper: decay every epoch; slim's wd
    (2.5, 0.05, np.float32),   # released code: every 2.5 epochs; wd visible
    (2.5, 0.05, np.float64),   # same algorithm to ~machine precision
])
def test_rmsprop_tf_matches_tensorflow(decay_epochs, wd, dtype):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cfg = _cfg(decay_epochs=decay_epochs, weight_decay=wd)
  params, grads = _toy_params(dtype=dtype), _grads_seq(scale=0.1, dtype=dtype)
  # TF keeps Python-float hyperparameters as float32 tensors and casts them to
  # the variable dtype; pass them in the variable dtype for the float64 run.
  c = lambda x: tf.constant(x, tf.as_dtype(dtype))
  tf_hist = _run_tf(
      lambda lr: tf.compat.v1.train.RMSPropOptimizer(
          lr, decay=c(0.9), momentum=c(0.9), epsilon=c(1.0)),
      params, grads, wd=wd, lr0=0.09,
      decay_steps=int(STEPS_PER_EPOCH * decay_epochs), decay_rate=0.98)
  with jax.enable_x64(dtype == np.float64):
    tx, _ = optim.make_optimizer(cfg, steps_per_epoch=STEPS_PER_EPOCH,
                                 global_batch_size=192, total_steps=NUM_STEPS)
    jax_hist = _run_optax(tx, params, grads)
  _assert_histories_close(jax_hist, tf_hist,
                          tol=1e-12 if dtype == np.float64 else 1e-6)


def test_rmsprop_parity_test_detects_zero_initial_scale():
  """Control: PyTorch-style ms=0 initialisation must fail the comparison."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tx = optax.chain(
      optax.add_decayed_weights(4e-5, mask=optim.weight_decay_mask),
      optax.rmsprop(optax.exponential_decay(0.09, 4, 0.98, staircase=True),
                    decay=0.9, eps=1.0, initial_scale=0.0, momentum=0.9))
  params, grads = _toy_params(), _grads_seq(scale=0.1)
  tf_hist = _run_tf(
      lambda lr: tf.compat.v1.train.RMSPropOptimizer(
          lr, decay=0.9, momentum=0.9, epsilon=1.0),
      params, grads, wd=4e-5, lr0=0.09, decay_steps=4, decay_rate=0.98)
  with pytest.raises(AssertionError):
    _assert_histories_close(_run_optax(tx, params, grads), tf_hist)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_tensorflow(nesterov):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cfg = _cfg(name="sgd", base_lr=0.1, decay_rate=0.5, weight_decay=0.05,
             nesterov=nesterov)
  tx, _ = optim.make_optimizer(cfg, steps_per_epoch=STEPS_PER_EPOCH,
                               global_batch_size=96, total_steps=NUM_STEPS)
  params, grads = _toy_params(), _grads_seq(scale=0.1)
  tf_hist = _run_tf(
      lambda lr: tf.compat.v1.train.MomentumOptimizer(
          lr, momentum=0.9, use_nesterov=nesterov),
      params, grads, wd=0.05, lr0=0.1, decay_steps=STEPS_PER_EPOCH,
      decay_rate=0.5)
  _assert_histories_close(_run_optax(tx, params, grads), tf_hist)
