"""The machine and library versions a measurement was made on (`mnv2-latency`, `mnv2-measure`)."""

from __future__ import annotations

import os
import platform
from importlib import metadata


def machine() -> dict:
  """CPU model, CPU count, platform, Python and the versions of the measuring stack."""
  cpu = platform.processor()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
  except OSError:
    pass
  versions = {}
  for pkg in ("ai-edge-litert", "tensorflow-cpu", "jax"):
    try:
      versions[pkg] = metadata.version(pkg)
    except metadata.PackageNotFoundError:
      versions[pkg] = None
  return {"cpu": cpu, "cpu_count": os.cpu_count(), "platform": platform.platform(),
          "python": platform.python_version(), "versions": versions}
