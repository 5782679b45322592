"""The native custom calls run data-parallel on multi-device meshes (ops/native/partition.py).

Each check runs in a subprocess with 4 forced CPU devices (the device count is fixed when JAX
starts). The sharded results must equal a one-device run. The compiled HLO must show the calls
on per-device shards, with no all-gather. The batch sums must go through an all-reduce.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from mnv2_jax.ops import native

pytestmark = pytest.mark.skipif(not native.available(),
                                reason=f"native kernels unavailable: {native.unavailable_reason()}")

_SCRIPT = textwrap.dedent("""
    import json, re, sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from mnv2_jax.ops import batchnorm, depthwise

    take = int(sys.argv[1])

    def loss(x, k, scale, bias):
      y = depthwise.depthwise_conv(x[:take], k, 2, "native")
      z, mean, var = batchnorm.batch_norm_act(y, scale, bias, 1e-3, "relu6", "native")
      return jnp.sum(z * jnp.cos(z)) + jnp.sum(mean * var), z

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True))
    rng = np.random.default_rng(0)
    args = (rng.normal(size=(8, 9, 10, 48)).astype(np.float32),
            rng.normal(size=(3, 3, 1, 48)).astype(np.float32),
            rng.uniform(0.5, 1.5, 48).astype(np.float32),
            rng.normal(size=48).astype(np.float32))
    (want_loss, want_z), want_grads = step(*args)  # uncommitted: one device
    report = {}
    for name, shape, axes in (("flat", (4,), "d"), ("two_axes", (2, 2), ("a", "b")),
                              ("one_of_two", (2, 2), "a")):
      names = ("d",) if len(shape) == 1 else ("a", "b")
      mesh = Mesh(np.asarray(jax.devices()).reshape(shape), names)
      sharded = [jax.device_put(a, NamedSharding(mesh, P(axes) if i == 0 else P()))
                 for i, a in enumerate(args)]
      (got_loss, got_z), got_grads = step(*sharded)
      hlo = step.lower(*sharded).compile().as_text()
      # (first operand's shape, target): every native call's first operand is batched.
      calls = re.findall(r'custom_call_target="(Mnv2\\w+)", '
                         r"operand_layout_constraints=\\{f32\\[([0-9,]*)\\]", hlo)
      calls = [(dims, target) for target, dims in calls]
      report[name] = dict(
          loss_err=abs(float(got_loss) - float(want_loss)) / abs(float(want_loss)),
          z_err=float(np.abs(np.asarray(got_z) - np.asarray(want_z)).max()),
          z_sharding=str(got_z.sharding.spec),
          grad_err=[float(np.abs(np.asarray(g) - np.asarray(w)).max() / np.abs(w).max())
                    for g, w in zip(got_grads, want_grads)],
          calls=sorted(set(calls)), all_gather="all-gather" in hlo,
          all_reduce="all-reduce" in hlo)
    print(json.dumps(report))
""")


def _run_script(script: str, devices: int, *args) -> dict:
  """Runs `script` with `devices` CPU devices; returns the JSON of its last stdout line."""
  env = dict(os.environ, JAX_NUM_CPU_DEVICES=str(devices), JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                        text=True, env=env, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def _run(take: int) -> dict:
  """Batch 8 sharded over the mesh; the ops see its first `take` rows."""
  return _run_script(_SCRIPT, 4, take)


def _assert_matches_one_device(r: dict) -> None:
  assert r["loss_err"] < 1e-5, r
  assert r["z_err"] < 1e-4, r
  assert max(r["grad_err"]) < 1e-4, r


def test_calls_run_on_batch_shards_and_match_one_device():
  report = _run(take=8)
  # Batch 8 over 4 devices ("flat", "two_axes") or over the 2 devices of axis "a".
  for name, shard in (("flat", 2), ("two_axes", 2), ("one_of_two", 4)):
    r = report[name]
    _assert_matches_one_device(r)
    assert not r["all_gather"], (name, r)
    assert r["all_reduce"], (name, r)  # weight-gradient and BN sums
    targets = {target for _, target in r["calls"]}
    assert targets == {"Mnv2DepthwiseForward", "Mnv2DepthwiseInputGrad",
                       "Mnv2DepthwiseWeightGrad", "Mnv2BnMoments", "Mnv2BnActGradSums"}, r
    for dims, target in r["calls"]:
      assert int(dims.split(",")[0]) == shard, (name, dims, target)  # per-device batch, not 8
  assert report["flat"]["z_sharding"] == "P('d',)"


def test_batch_that_does_not_split_evenly_is_computed_whole():
  """6 of 8 sharded rows, on 4 devices: the calls run on the whole 6 on every device."""
  r = _run(take=6)["flat"]
  _assert_matches_one_device(r)
  assert {dims.split(",")[0] for dims, _ in r["calls"]} == {"6"}, r


_CACHE_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from mnv2_jax import compile_cache
    from mnv2_jax.ops import depthwise

    compile_cache.enable(sys.argv[1])
    stride = int(sys.argv[2])
    hits = []
    jax.monitoring.register_event_listener(
        lambda event, **kw: hits.append(event) if event.endswith("/cache_hits") else None)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 16)).astype(np.float32)
    k = np.random.default_rng(1).normal(size=(3, 3, 1, 16)).astype(np.float32)
    mesh = Mesh(np.asarray(jax.devices()), ("d",))
    conv = jax.jit(lambda x, k: depthwise.depthwise_conv(x, k, stride, "native"))
    got = conv(jax.device_put(x, NamedSharding(mesh, P("d"))), k)
    want = depthwise.depthwise_conv(x, k, stride, "xla")
    print(json.dumps(dict(hits=len(hits), shape=list(got.shape),
                          err=float(np.abs(np.asarray(got) - np.asarray(want)).max()))))
""")


def test_persistent_cache_hits_and_keeps_calls_with_equal_shapes_apart(tmp_path):
  """Stride 5 and 6 on 8x8 inputs: same shapes, different convolutions, same pre-partition ops.

  Without the static arguments in the HLO (partition.py's key operand), dropping the callback
  pointer from the cache key would make stride 6 load stride 5's executable.
  """
  first, again, other = (_run_script(_CACHE_SCRIPT, 2, tmp_path, stride)
                          for stride in (5, 5, 6))
  assert first["shape"] == other["shape"] == [4, 2, 2, 16]
  assert first["err"] < 1e-5 and other["err"] < 1e-5, (first, other)
  assert again["hits"] >= 1 and again["err"] == first["err"], again


def test_cache_key_fingerprints_the_file_defining_each_call(tmp_path):
  """Every `batch_parallel` caller's own source is in its key, found from the function itself."""
  import importlib.util
  import pathlib
  import zlib

  from mnv2_jax.ops import batchnorm
  from mnv2_jax.ops import depthwise
  from mnv2_jax.ops.native import partition

  def crc(*modules):
    files = sorted(pathlib.Path(m.__file__).resolve() for m in (partition, *modules))
    return zlib.crc32(b"".join(f.read_bytes() for f in files))

  assert depthwise._native_forward.source_crc == crc(depthwise)
  assert depthwise._native_weight_grad.source_crc == crc(depthwise)
  assert batchnorm._native_moments.source_crc == crc(batchnorm)

  def load(text):  # A new caller module, as a user's own kernel file would be.
    path = tmp_path / "my_kernels.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("my_kernels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return partition.batch_parallel(module.impl, num_static=0, batched=(True,),
                                    results=("batch",), rule="b c -> b c").source_crc

  before = load("def impl(x):\n  return x\n")
  assert before != load("def impl(x):\n  return x * 1\n")  # an edit changes the key
