"""Native (C++) XLA:CPU kernels, compiled on first use and registered as XLA FFI targets.

The kernels live next to this file (``depthwise_cpu.cc``, ``batchnorm_cpu.cc``, ``parallel.h``). They are built with the system C++
compiler against the XLA FFI headers shipped inside jaxlib (``jax.ffi.include_dir()``), the way
``torch.utils.cpp_extension.load`` builds extensions: no build step at install time, nothing to
configure. The shared library is cached under ``$MNV2_JAX_NATIVE_DIR`` (default
``~/.cache/mnv2_jax/native``) keyed by a hash of the source, the compiler command, jaxlib's
version and the CPU's instruction-set flags (the code is built with ``-march=native``), so a
shared home directory on a heterogeneous cluster never hands one CPU another CPU's binary. The
build writes to a temporary file and renames it into place, so concurrent processes (a sweep
starting several runs at once) cannot load a half-written library.

``available()`` says whether the kernels could be built and loaded here; callers pick a pure-XLA
implementation when it is False (see ``mnv2_jax.ops.depthwise``), and ``unavailable_reason()``
says why. Set ``MNV2_JAX_NATIVE=0`` to never build or use them.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import pathlib
import shlex
import shutil
import subprocess
import tempfile

import jax
import jaxlib

_DIR = pathlib.Path(__file__).parent
SOURCES = (_DIR / "depthwise_cpu.cc", _DIR / "batchnorm_cpu.cc")
HEADERS = (_DIR / "parallel.h",)
TARGETS = ("Mnv2DepthwiseForward", "Mnv2DepthwiseInputGrad", "Mnv2DepthwiseWeightGrad",
           "Mnv2BnMoments", "Mnv2BnActGradSums")
_FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-Wno-attributes",
          "-Wno-return-type")

_log = logging.getLogger(__name__)


class NativeBuildError(RuntimeError):
  """The native kernels could not be compiled or loaded on this machine."""


def _cache_dir() -> pathlib.Path:
  default = pathlib.Path.home() / ".cache" / "mnv2_jax" / "native"
  return pathlib.Path(os.environ.get("MNV2_JAX_NATIVE_DIR") or default)


def _cpu_signature() -> str:
  """The CPU model and instruction-set flags (what ``-march=native`` depends on)."""
  try:
    text = pathlib.Path("/proc/cpuinfo").read_text()
  except OSError:
    import platform
    return platform.machine() + platform.processor()
  lines = [l for l in text.splitlines()
           if l.split(":")[0].strip() in ("model name", "flags", "Features", "CPU part")]
  return "\n".join(sorted(set(lines)))


def _compiler() -> str:
  cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which(
      "clang++")
  if not cxx:
    raise NativeBuildError("no C++ compiler found (looked for $CXX, g++, c++, clang++)")
  return cxx


def build() -> pathlib.Path:
  """Compiles the kernels (if not cached) and returns the shared library's path."""
  cxx = _compiler()
  include = jax.ffi.include_dir()
  cmd = [cxx, *_FLAGS, "-I", include, *map(str, SOURCES)]
  key = hashlib.sha256()
  for part in (*(p.read_bytes() for p in SOURCES + HEADERS), " ".join(cmd).encode(),
               jaxlib.__version__.encode(), _cpu_signature().encode()):
    key.update(part)
  out = _cache_dir() / f"mnv2_kernels-{key.hexdigest()[:16]}.so"
  if out.exists():
    return out
  out.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
  os.close(fd)
  try:
    proc = subprocess.run(cmd + ["-o", tmp], capture_output=True, text=True)
    if proc.returncode != 0:
      raise NativeBuildError(
          f"compiling the native kernels failed ({shlex.join(cmd)}):\n{proc.stderr[-4000:]}")
    _log.info("built %s", out)
    os.replace(tmp, out)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)
  return out


@functools.lru_cache(maxsize=None)
def _load() -> ctypes.CDLL:
  if os.environ.get("MNV2_JAX_NATIVE", "1") == "0":
    raise NativeBuildError("disabled by MNV2_JAX_NATIVE=0")
  try:
    lib = ctypes.cdll.LoadLibrary(str(build()))
  except OSError as e:
    raise NativeBuildError(f"loading the native kernels failed: {e}") from e
  for name in TARGETS:
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
  return lib


def ensure_registered() -> None:
  """Builds, loads and registers the kernels; raises ``NativeBuildError`` if impossible."""
  _load()


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
  """None if the kernels are usable here, else why not (logged once as a warning)."""
  try:
    _load()
  except NativeBuildError as e:
    _log.warning("native depthwise kernels unavailable, using pure XLA instead: %s", e)
    return str(e)
  return None


def available() -> bool:
  return unavailable_reason() is None
