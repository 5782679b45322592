"""The native kernels' build, cache and failure behaviour, and thread-count independence.

Numerical agreement with XLA and NumPy is in test_depthwise.py (``impl="native"``).
"""

import json
import os
import subprocess
import sys

import pytest

from mnv2_jax.ops import native


def test_build_is_cached_and_atomic(tmp_path, monkeypatch):
  monkeypatch.setenv("MNV2_JAX_NATIVE_DIR", str(tmp_path))
  first = native.build()
  mtime = first.stat().st_mtime_ns
  assert first.parent == tmp_path and first.suffix == ".so"
  assert native.build() == first and first.stat().st_mtime_ns == mtime  # Not rebuilt.
  assert [p.name for p in tmp_path.iterdir()] == [first.name]  # No temporary left behind.


def test_build_failure_names_the_cause(tmp_path, monkeypatch):
  monkeypatch.setenv("MNV2_JAX_NATIVE_DIR", str(tmp_path))
  monkeypatch.setenv("CXX", "false")  # A "compiler" that always fails.
  with pytest.raises(native.NativeBuildError, match="compiling the native kernels failed"):
    native.build()
  assert list(tmp_path.iterdir()) == []


_SNIPPET = """
import os, sys, json
os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(",")})
import jax, jax.numpy as jnp, numpy as np
from mnv2_jax.ops import depthwise as dw
rng = np.random.default_rng(0)
x = jnp.asarray(rng.standard_normal((8, 20, 20, 40)), jnp.float32)
k = jnp.asarray(rng.standard_normal((3, 3, 1, 40)), jnp.float32)
g = jnp.asarray(rng.standard_normal((8, 10, 10, 40)), jnp.float32)
_, vjp = jax.vjp(lambda a, b: dw.depthwise_conv(a, b, 2, "native"), x, k)
dx, dk = jax.jit(vjp)(g)
print(json.dumps({"threads": len(os.sched_getaffinity(0)),
                  "dk": np.asarray(dk).tobytes().hex(), "dx": np.asarray(dx).tobytes().hex()}))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two CPUs")
def test_results_do_not_depend_on_thread_count():
  """The weight gradient sums fixed row ranges in a fixed order: bitwise equal on 1 or 2 CPUs."""
  cpus = sorted(os.sched_getaffinity(0))[:2]
  out = []
  for affinity in (f"{cpus[0]}", f"{cpus[0]},{cpus[1]}"):
    proc = subprocess.run([sys.executable, "-c", _SNIPPET, affinity], capture_output=True,
                          text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"}, check=True)
    out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
  assert [o["threads"] for o in out] == [1, 2]
  assert out[0]["dk"] == out[1]["dk"]
  assert out[0]["dx"] == out[1]["dx"]
