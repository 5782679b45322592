"""Shared benchmark plumbing: fair alternating timing, machine/version facts, JSON and Markdown.

Why alternate: the CPU boxes are shared and noisy. Timing framework A for a minute and then B
for a minute compares two different machines; running A, B, A, B ... in short repeats and taking
each one's median compares them under the same background load. Only ratios measured side by
side in one invocation are meaningful.

Threads: PyTorch is pinned with ``torch.set_num_threads(cpu_count)`` by the callers. XLA:CPU
sizes its intra-op Eigen thread pool to the number of CPUs the process may run on
(``sched_getaffinity``); there is no stable XLA flag for the count, so both frameworks are
confined by the same affinity mask (run under ``taskset -c 0,1`` to pin them to two cores).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import time
from typing import Callable, Sequence

RESULTS_MD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def cpu_model() -> str:
  """CPU model name from /proc/cpuinfo (falls back to ``platform.processor()``)."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def usable_cpus() -> int:
  """CPUs this process may run on (the affinity mask, not the machine's total)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def machine_info(with_torch: bool = True) -> dict:
  """Machine, library versions, date and the exact command line, for every record."""
  import flax
  import jax
  import jaxlib
  info = {
      "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
      "cpu": cpu_model(),
      "cpus_usable": usable_cpus(),
      "cpus_total": os.cpu_count(),
      "jax_backend": jax.default_backend(),
      "jax_devices": [d.device_kind for d in jax.devices()],
      "jax": jax.__version__,
      "jaxlib": jaxlib.__version__,
      "flax": flax.__version__,
      "python": platform.python_version(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "command": " ".join(shlex.quote(a) for a in ["python"] + sys.orig_argv[1:]),
  }
  if with_torch:
    try:
      import torch
      info["torch"] = torch.__version__
      info["torch_threads"] = torch.get_num_threads()
      info["torch_cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
      info["torch"] = None
  return info


def time_alternating(fns: dict[str, Callable[[], object]], *, warmup: int, steps: int,
                     repeats: int) -> dict[str, list[float]]:
  """Seconds per call of each ``fn``, measured A B A B ...; returns per-repeat means.

  Every ``fn`` must run one complete step and block until its result is ready. Each gets
  ``warmup`` untimed calls, then ``repeats`` rounds in which every ``fn`` in turn runs ``steps``
  timed calls. The order inside a round rotates so no framework always goes first.
  """
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  names = list(fns)
  out: dict[str, list[float]] = {n: [] for n in names}
  for r in range(repeats):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
      fn = fns[name]
      t0 = time.perf_counter()
      for _ in range(steps):
        fn()
      out[name].append((time.perf_counter() - t0) / steps)
  return out


def summarize(per_repeat: Sequence[float]) -> dict:
  """Median, min and spread of per-step seconds over repeats."""
  return {"median_s": statistics.median(per_repeat), "min_s": min(per_repeat),
          "max_s": max(per_repeat), "repeats": len(per_repeat)}


def parse_compiler_options(items: Sequence[str] | None) -> dict | None:
  """``["xla_backend_optimization_level=1", ...]`` -> {name: int/float/bool/str} or None."""
  if not items:
    return None
  out = {}
  for item in items:
    key, sep, value = item.partition("=")
    if not sep:
      raise ValueError(f"--compiler_option expects KEY=VALUE, got {item!r}")
    if value.lower() in ("true", "false"):
      out[key] = value.lower() == "true"
      continue
    for cast in (int, float):
      try:
        out[key] = cast(value)
        break
      except ValueError:
        pass
    else:
      out[key] = value
  return out


def emit(record: dict, json_out: str | None) -> None:
  """One JSON line per measurement on stdout, and appended to ``json_out`` when given."""
  line = json.dumps(record, sort_keys=True)
  print(line, flush=True)
  if json_out:
    with open(json_out, "a") as f:
      f.write(line + "\n")


def append_markdown(title: str, info: dict, header: Sequence[str], rows: Sequence[Sequence],
                    notes: Sequence[str] = (), path: str = RESULTS_MD) -> None:
  """Appends a section with the machine/version facts, the command and a table."""
  versions = ", ".join(f"{k} {info[k]}" for k in ("jax", "jaxlib", "flax", "torch")
                       if info.get(k))
  devices = ", ".join(sorted(set(info["jax_devices"])))
  lines = [f"\n## {title}\n",
           f"- date: {info['date_utc']}",
           f"- machine: {info['cpu']}, {info['cpus_usable']} usable of {info['cpus_total']} "
           f"CPUs; JAX backend {info['jax_backend']} ({devices})",
           f"- versions: {versions}, python {info['python']}",
           f"- XLA_FLAGS: `{info['xla_flags'] or '(none)'}`",
           f"- command: `{info['command']}`",
           *[f"- {n}" for n in notes],
           "",
           "| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  with open(path, "a") as f:
    f.write("\n".join(lines) + "\n")
