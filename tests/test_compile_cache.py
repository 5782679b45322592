"""`mnv2_jax.compile_cache`: directory resolution, config switches, and a real cross-process hit.

The cross-process test starts two fresh Python processes that compile the same jitted function
with the cache enabled on one directory: the first must write entries and record no hit, the
second must record JAX's ``/jax/compilation_cache/cache_hits`` event. Nothing is timed.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import pytest

from mnv2_jax import compile_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp
    from mnv2_jax import compile_cache
    hits = []
    jax.monitoring.register_event_listener(
        lambda event, **kw: hits.append(event) if event.endswith("/cache_hits") else None)
    path = compile_cache.enable(sys.argv[1])
    f = jax.jit(lambda x, w: jnp.tanh(x @ w).sum(axis=0))
    f.lower(jnp.ones((16, 32)), jnp.ones((32, 8))).compile()
    print("RESULT " + json.dumps({"hits": len(hits), "path": path}))
""")


@pytest.fixture
def restore_jax_config():
  """Undo `enable()`'s global config changes after a test that calls it in-process."""
  names = ("jax_enable_compilation_cache", "jax_compilation_cache_dir",
           "jax_persistent_cache_min_compile_time_secs",
           "jax_persistent_cache_min_entry_size_bytes")
  saved = {n: getattr(jax.config, n) for n in names}
  yield
  for n, v in saved.items():
    jax.config.update(n, v)
  compile_cache.disable()
  jax.config.update("jax_compilation_cache_dir", saved["jax_compilation_cache_dir"])


def _run_child(cache_dir):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", CHILD, str(cache_dir)], capture_output=True,
                       text=True, cwd=ROOT, env=env, check=True, timeout=300).stdout
  return json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])


def test_second_process_hits_the_cache(tmp_path):
  cache_dir = tmp_path / "cache"
  first = _run_child(cache_dir)
  assert first["hits"] == 0
  assert first["path"] == str(cache_dir)
  entries = os.listdir(cache_dir)
  assert entries, "the first process wrote no cache entry"
  second = _run_child(cache_dir)
  assert second["hits"] >= 1
  assert sorted(os.listdir(cache_dir)) == sorted(entries)  # Loaded, nothing new written.


def test_default_dir_respects_env(monkeypatch, tmp_path):
  monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "from_env"))
  assert compile_cache.default_dir() == str(tmp_path / "from_env")
  monkeypatch.delenv(compile_cache.ENV_VAR)
  assert compile_cache.default_dir() == os.path.expanduser("~/.cache/mnv2_jax/jax")


@pytest.mark.usefixtures("restore_jax_config")
def test_enable_and_disable_set_jax_config(tmp_path, monkeypatch):
  monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "env_dir"))
  path = compile_cache.enable(None, min_compile_time_secs=0)
  assert path == str(tmp_path / "env_dir") and os.path.isdir(path)
  assert jax.config.jax_compilation_cache_dir == path
  assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
  assert compile_cache.is_enabled()
  path = compile_cache.enable(str(tmp_path / "explicit"), min_compile_time_secs=2.5)
  assert path == str(tmp_path / "explicit")
  assert jax.config.jax_persistent_cache_min_compile_time_secs == 2.5
  compile_cache.disable()
  assert not compile_cache.is_enabled()
