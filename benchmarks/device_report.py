"""Incremental output of `benchmarks.device_check`: one JSON file and one Markdown file.

Both are written as the check goes, so a run cut short (a lease that ends, a command killed at
its time limit) still leaves everything measured before that point:

* ``device_check.json`` is rewritten whole (to a temporary name, then renamed) after every
  section, so it is always a complete, parseable document;
* ``device_check.md`` gets one Markdown section appended, and flushed, per finished section.

Also here: the environment facts every record carries (device, driver, library versions, the
command) and `Section`, the time budget a section checks between its units of work.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

from benchmarks import common

JSON_NAME = "device_check.json"
MD_NAME = "device_check.md"


def _run(cmd: list[str]) -> str | None:
  try:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True)
    return out.stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None


def _version(module: str) -> str | None:
  try:
    mod = __import__(module)
    return getattr(mod, "__version__", "?")
  except ImportError:
    return None


def environment(with_torch: bool) -> dict:
  """Device, driver, versions and command (see `benchmarks.common.machine_info`), never raising."""
  import jax  # pylint: disable=g-import-not-at-top
  info = common.machine_info(with_torch=False)
  info["optax"] = _version("optax")
  info["numpy"] = _version("numpy")
  devices = jax.devices()
  info["jax_device"] = str(devices[0])
  info["jax_platform"] = devices[0].platform
  try:
    info["host_cpu_device"] = str(jax.devices("cpu")[0])
  except RuntimeError as e:  # No CPU backend (should not happen with jaxlib).
    info["host_cpu_device"] = f"unavailable: {e}"
  info["nvidia_smi"] = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,"
                             "clocks.max.sm", "--format=csv,noheader"])
  info["xla_python_client_preallocate"] = os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")
  info["jax_platforms_env"] = os.environ.get("JAX_PLATFORMS")
  try:
    from jax._src.lib import cuda_versions  # pylint: disable=g-import-not-at-top
    if cuda_versions is not None:
      info["jax_cudnn"] = cuda_versions.cudnn_get_version()
      info["jax_cuda_runtime"] = cuda_versions.cuda_runtime_get_version()
  except Exception:  # pylint: disable=broad-except
    pass
  if with_torch:
    try:
      import torch  # pylint: disable=g-import-not-at-top
      info["torch"] = torch.__version__
      info["torch_threads"] = torch.get_num_threads()
      info["torch_cuda"] = torch.version.cuda
      info["torch_cudnn"] = torch.backends.cudnn.version() if torch.cuda.is_available() else None
      info["torch_device"] = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                              else "cpu")
    except ImportError:
      info["torch"] = None
  info["python_executable"] = sys.executable
  info["platform"] = platform.platform()
  return info


class Report:
  """The run's results: sections in order, each with a status; written after every section."""

  def __init__(self, out_dir: str, env: dict, plan: dict):
    os.makedirs(out_dir, exist_ok=True)
    self.out_dir = out_dir
    self.json_path = os.path.join(out_dir, JSON_NAME)
    self.md_path = os.path.join(out_dir, MD_NAME)
    self.t0 = time.perf_counter()
    self.doc: dict[str, Any] = {
        "schema": 1, "env": env, "plan": plan, "sections": {}, "order": [],
        "started_utc": _now(), "finished": False, "failed_checks": []}
    self.write_json()
    devices = env.get("nvidia_smi") or ", ".join(sorted(set(env["jax_devices"])))
    versions = ", ".join(f"{k} {env[k]}" for k in ("jax", "jaxlib", "flax", "optax", "torch")
                         if env.get(k))
    self._append_md([
        f"## Device check ({plan['name']}), {env['date_utc']}", "",
        f"- device: {devices}; JAX backend {env['jax_backend']} ({env['jax_device']}), host "
        f"CPU {env['cpu']} ({env['cpus_usable']} usable CPUs)",
        f"- versions: {versions}, python {env['python']}",
        f"- CUDA/cuDNN: jax {env.get('jax_cuda_runtime')}/{env.get('jax_cudnn')}, torch "
        f"{env.get('torch_cuda')}/{env.get('torch_cudnn')}",
        f"- XLA_FLAGS: `{env['xla_flags'] or '(none)'}`; XLA_PYTHON_CLIENT_PREALLOCATE="
        f"{env['xla_python_client_preallocate']}",
        f"- command: `{env['command']}`", ""])

  def elapsed(self) -> float:
    return time.perf_counter() - self.t0

  def write_json(self) -> None:
    tmp = self.json_path + ".tmp"
    with open(tmp, "w") as f:
      json.dump(self.doc, f, indent=1, sort_keys=True, default=_jsonable)
    os.replace(tmp, self.json_path)

  def _append_md(self, lines: list[str]) -> None:
    with open(self.md_path, "a") as f:
      f.write("\n".join(lines) + "\n")
      f.flush()

  def add(self, name: str, result: dict, md_lines: list[str]) -> None:
    """Stores one finished section and writes both files."""
    self.doc["sections"][name] = result
    self.doc["order"].append(name)
    if result.get("gating") and result["status"] != "passed":
      self.doc["failed_checks"].append(name)
    self.write_json()
    head = (f"### {name}: {result['status']} ({result['wall_s']:.1f} s of a "
            f"{result['budget_s']:.0f} s budget)")
    self._append_md([head, "", *md_lines, ""])
    print(f"[device_check] {head}", flush=True)

  def finish(self) -> None:
    self.doc["finished"] = True
    self.doc["finished_utc"] = _now()
    self.doc["wall_s"] = self.elapsed()
    self.write_json()
    failed = self.doc["failed_checks"]
    self._append_md([f"Finished in {self.doc['wall_s']:.1f} s; failed checks: "
                     f"{', '.join(failed) if failed else 'none'}.", ""])


class Section:
  """A section's time budget: `left()` seconds remain; `over()` once it is spent."""

  def __init__(self, budget_s: float):
    self.budget_s = budget_s
    self.t0 = time.perf_counter()

  def elapsed(self) -> float:
    return time.perf_counter() - self.t0

  def left(self) -> float:
    return self.budget_s - self.elapsed()

  def over(self) -> bool:
    return self.left() <= 0


def run_section(report: Report, name: str, budget_s: float, gating: bool,
                fn: Callable[[Section], tuple[dict, list[str]]]) -> None:
  """Runs `fn(section)` -> (result, markdown lines); an exception becomes status "error".

  `fn`'s result must hold "status" ("passed", "failed", "measured", "partial", ...). `gating`
  sections (correctness, smoke) make the whole check fail when not "passed".
  """
  sec = Section(budget_s)
  print(f"[device_check] {name}: start (budget {budget_s:.0f} s, {report.elapsed():.1f} s "
        f"into the run)", flush=True)
  try:
    result, md = fn(sec)
  except Exception as e:  # pylint: disable=broad-except
    result = {"status": "error", "error": f"{type(e).__name__}: {e}",
              "traceback": traceback.format_exc()}
    md = [f"Error: `{type(e).__name__}: {str(e)[:500]}`"]
    print(result["traceback"], file=sys.stderr, flush=True)
  result.update(gating=gating, budget_s=budget_s, wall_s=sec.elapsed(),
                over_budget=sec.over())
  report.add(name, result, md)


def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
  return (["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
          + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _jsonable(obj):
  try:
    return float(obj)
  except (TypeError, ValueError):
    return str(obj)


def command_line() -> str:
  return " ".join(shlex.quote(a) for a in ["python"] + sys.orig_argv[1:])
