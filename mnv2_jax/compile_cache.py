"""Turn JAX's persistent compilation cache on or off for this process.

Why: compiling the MobileNetV2 training step takes seconds to tens of seconds (CPU is the
worst), and every sweep point, restart and evaluation job compiles the same programs again. With
the cache on, a process whose jitted function, shapes, flags and jax/jaxlib version match an
earlier compilation loads the executable from disk instead (see benchmarks/RESULTS.md for the
measured first vs cached compile times).

The cache is keyed by JAX on the HLO, the compile options, the backend and the library
versions, so a stale entry cannot be picked up after an upgrade; deleting the directory is
always safe. On GPU, ``jax_persistent_cache_enable_xla_caches`` (JAX default) also persists
XLA's per-fusion autotuning results next to the executables.

Usage (the trainer calls ``enable(config.compile_cache_dir)``)::

    from mnv2_jax import compile_cache
    compile_cache.enable()            # $MNV2_JAX_CACHE_DIR or ~/.cache/mnv2_jax/jax
"""

from __future__ import annotations

import os

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cc

ENV_VAR = "MNV2_JAX_CACHE_DIR"
DEFAULT_DIR = os.path.join("~", ".cache", "mnv2_jax", "jax")


def default_dir() -> str:
  """``$MNV2_JAX_CACHE_DIR`` if set and non-empty, else ``~/.cache/mnv2_jax/jax`` (expanded)."""
  return os.path.expanduser(os.environ.get(ENV_VAR) or DEFAULT_DIR)


def enable(cache_dir: str | None = None, min_compile_time_secs: float = 0.0,
           min_entry_size_bytes: int = -1) -> str:
  """Turns on the persistent compilation cache and returns the (absolute) directory used.

  Args:
    cache_dir: where executables are stored; None or "" means `default_dir()`. Created if
      missing. Local paths and anything JAX's file cache accepts (e.g. ``gs://``) work.
    min_compile_time_secs: only programs that took at least this long to compile are written
      (JAX's default is 1 s; 0 caches everything, so small eval/init programs load too).
    min_entry_size_bytes: only executables at least this big are written; -1 (default) turns
      the size filter off, 0 lets JAX pick a filesystem-dependent minimum.

  Safe to call more than once and after programs were already compiled: the cache object is
  re-initialised on the next compilation.
  """
  path = cache_dir or default_dir()
  if "://" not in path:
    path = os.path.abspath(os.path.expanduser(path))
    os.makedirs(path, exist_ok=True)
  jax.config.update("jax_enable_compilation_cache", True)
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_secs))
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", int(min_entry_size_bytes))
  # Multi-device CPU programs hold custom-partitioned native calls; JAX keys those on a
  # per-process callback pointer unless told to drop it. Dropping it is safe for our calls:
  # their HLO carries everything the callback depends on (mnv2_jax/ops/native/partition.py).
  jax.config.update("jax_remove_custom_partitioning_ptr_from_cache_key", True)
  # JAX initialises its cache object once per process; drop it so the new settings take effect.
  _jax_cc.reset_cache()
  return path


def disable() -> None:
  """Turns the persistent cache off for the rest of this process (files are left on disk)."""
  jax.config.update("jax_compilation_cache_dir", None)
  _jax_cc.reset_cache()


def is_enabled() -> bool:
  """True when a cache directory is configured and the cache is switched on."""
  return bool(jax.config.jax_compilation_cache_dir) and jax.config.jax_enable_compilation_cache
