"""Reads a local (offline or online) W&B run back: config, summary, history, group, tags.

Why this exists: in wandb 0.31 offline mode writes no ``wandb-summary.json``/``config.yaml``
(wandb/wandb#9646) and ``wandb.Api`` needs a server, so the only complete local record is the
binary transaction log ``run-<id>.wandb``. Tests use this to check what W&B *recorded* (not
merely that a call was made) and the results tooling uses it to collect runs that were never
synced.

Two readers give the same dict:

* ``"cli"``: W&B's own reader, ``wandb leet inspect --summary --json`` (state, config, summary,
  tags) plus ``wandb leet inspect --json`` (one JSON line per record: history, run record with
  group and job_type). Preferred: the format is W&B's to change.
* ``"parser"``: a small reader of the LevelDB-log-style file (header ``:W&B`` + 0xBEE1 +
  version 0; 32 KiB blocks of ``crc32:u32 len:u16 type:u8`` records, FULL/FIRST/MIDDLE/LAST
  fragments; payloads are ``wandb_internal_pb2.Record`` protobufs). Used when the CLI is
  missing or fails; a torn tail (crash mid-write) ends the read instead of failing it.

History rows are flat dicts keyed like W&B's own history (nested values joined with "."),
each with ``_step``. Summary and config are nested dicts without W&B's internal ``_wandb`` key.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from typing import Any, Iterator

from absl import logging as absl_logging

_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
_BLOCK = 32 * 1024
_REC_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_RUN_DIR_RE = re.compile(r"^(?:offline-)?run-(\d{8}_\d{6})-(.+)$")
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def list_run_dirs(path: str) -> list[str]:
  """Run directories under a workdir or a ``wandb`` dir, oldest first.

  Order: the start timestamp in the directory name, then the transaction log's mtime (two runs
  started within the same second).
  """
  wandb_dir = os.path.join(path, "wandb") if os.path.isdir(os.path.join(path, "wandb")) else path
  found = []
  for entry in os.listdir(wandb_dir) if os.path.isdir(wandb_dir) else ():
    full = os.path.join(wandb_dir, entry)
    match = _RUN_DIR_RE.match(entry)
    if match and not os.path.islink(full) and os.path.isdir(full):
      log = _find_wandb_file(full)
      if log is not None:
        found.append((match.group(1), os.path.getmtime(log), full))
  return [full for _, _, full in sorted(found)]


def _find_wandb_file(run_dir: str) -> str | None:
  logs = sorted(f for f in os.listdir(run_dir) if f.endswith(".wandb"))
  return os.path.join(run_dir, logs[-1]) if logs else None


def find_wandb_file(path: str) -> str:
  """The transaction log (``run-<id>.wandb``) that ``path`` designates.

  ``path`` may be the file itself, a run dir, or a workdir / ``wandb`` dir (then the latest
  run, see ``list_run_dirs``). Raises FileNotFoundError if there is none.
  """
  if os.path.isfile(path) and path.endswith(".wandb"):
    return path
  if os.path.isdir(path):
    direct = _find_wandb_file(path)
    if direct is not None:
      return direct
    runs = list_run_dirs(path)
    if runs:
      return _find_wandb_file(runs[-1])
  raise FileNotFoundError(f"no W&B run (run-*.wandb) found at {path}")


# ------------------------------------------------------------------------------------------
# Reader 1: W&B's CLI.


def _wandb_cli() -> list[str]:
  """The wandb executable of this interpreter's environment (venv), else ``python -m wandb``."""
  exe = os.path.join(os.path.dirname(sys.executable), "wandb")
  if os.path.isfile(exe) and os.access(exe, os.X_OK):
    return [exe]
  exe = shutil.which("wandb")
  return [exe] if exe else [sys.executable, "-m", "wandb"]


def _run_cli(args: list[str], timeout_s: float) -> str:
  proc = subprocess.run(_wandb_cli() + ["leet", "inspect"] + args, capture_output=True,
                        text=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"wandb leet inspect {' '.join(args)} exited {proc.returncode}: "
                       f"{proc.stderr.strip()[-500:]}")
  return proc.stdout


def _nonfinite(value: Any) -> Any:
  """The CLI prints NaN/inf as strings; turn them back into floats (as the parser reads them)."""
  if isinstance(value, str):
    return _NONFINITE.get(value, value)
  if isinstance(value, dict):
    return {k: _nonfinite(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_nonfinite(v) for v in value]
  return value


def _read_with_cli(wandb_file: str, timeout_s: float) -> dict[str, Any]:
  state = json.loads(_run_cli(["--summary", "--json", wandb_file], timeout_s))
  records = [json.loads(line)
             for line in _run_cli(["--json", wandb_file], timeout_s).splitlines()
             if line.strip()]
  run: dict[str, Any] = {}
  history = []
  for record in records:
    if record.get("type") == "run" and not run:
      run = record.get("run", {})
    elif record.get("type") == "history":
      history.append(_nonfinite(record["history"].get("item", {})))
  return {
      "run_id": state.get("run_id") or run.get("run_id"),
      "name": state.get("name") or run.get("display_name"),
      "project": state.get("project") or run.get("project"),
      "entity": state.get("entity") or run.get("entity") or None,
      "group": run.get("run_group") or None,
      "job_type": run.get("job_type") or None,
      "tags": list(state.get("tags") or run.get("tags") or []),
      "config": state.get("config") or {},
      "summary": _nonfinite(state.get("summary") or {}),
      "history": history,
      "exit_code": state.get("exit_code"),
      "finished": state.get("state") == "finished",
  }


# ------------------------------------------------------------------------------------------
# Reader 2: the transaction log itself.


def _iter_payloads(wandb_file: str) -> Iterator[bytes]:
  """Yields the serialized records of a ``.wandb`` file (fragments joined), in order."""
  with open(wandb_file, "rb") as f:
    data = f.read()
  if data[:_REC_HEADER] != _HEADER:
    raise ValueError(f"{wandb_file}: not a W&B transaction log (header {data[:7]!r})")
  pos, pending = _REC_HEADER, b""
  while pos + _REC_HEADER <= len(data):
    left = _BLOCK - pos % _BLOCK
    if left < _REC_HEADER:  # Zero padding at the end of a block.
      pos += left
      continue
    crc, length, kind = struct.unpack("<IHB", data[pos:pos + _REC_HEADER])
    payload = data[pos + _REC_HEADER:pos + _REC_HEADER + length]
    if (kind == 0 and length == 0) or len(payload) < length:
      break  # Preallocated/torn tail.
    if zlib.crc32(payload, zlib.crc32(bytes([kind]))) != crc:
      absl_logging.warning("%s: checksum mismatch at byte %d; stopping there", wandb_file, pos)
      break
    pos += _REC_HEADER + length
    if kind in (_FULL, _FIRST):
      pending = payload
    elif kind in (_MIDDLE, _LAST):
      pending += payload
    if kind in (_FULL, _LAST):
      yield pending
      pending = b""


def _parse(payload: bytes) -> Any:
  from wandb.proto import wandb_internal_pb2  # pylint: disable=g-import-not-at-top
  record = wandb_internal_pb2.Record()
  record.ParseFromString(payload)
  return record


def iter_records(wandb_file: str) -> Iterator[Any]:
  """Yields the ``wandb_internal_pb2.Record`` messages of a ``.wandb`` file in order."""
  for payload in _iter_payloads(wandb_file):
    yield _parse(payload)


def wait_for_exit_record(wandb_file: str, timeout_s: float = 10.0) -> bool:
  """Waits until the run's log has its exit record (among the last 8); False on timeout.

  Why: in wandb 0.31 ``run.finish()`` can return before wandb-core has flushed the
  transaction log (observed: the file still held only its 7-byte header ~10 ms after
  ``finish``), so reading a run right after finishing it may see nothing.
  """
  deadline = time.monotonic() + timeout_s
  last_size = -1
  while True:
    size = os.path.getsize(wandb_file) if os.path.exists(wandb_file) else 0
    if size != last_size and size > _REC_HEADER:
      last_size = size
      tail = collections.deque(_iter_payloads(wandb_file), maxlen=8)
      if any(_parse(p).WhichOneof("record_type") == "exit" for p in tail):
        return True
    if time.monotonic() > deadline:
      return False
    time.sleep(0.01)


def _item_keys(item: Any) -> list[str]:
  return list(item.nested_key) or [item.key]


def _apply(target: dict[str, Any], items: Any) -> None:
  """Applies config/summary update items (``key`` or ``nested_key`` + ``value_json``)."""
  for item in items:
    keys = _item_keys(item)
    node = target
    for key in keys[:-1]:
      if not isinstance(node.get(key), dict):
        node[key] = {}
      node = node[key]
    node[keys[-1]] = json.loads(item.value_json)


def _remove(target: dict[str, Any], items: Any) -> None:
  for item in items:
    keys = _item_keys(item)
    node = target
    for key in keys[:-1]:
      node = node.get(key, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
      node.pop(keys[-1], None)


def _read_with_parser(wandb_file: str) -> dict[str, Any]:
  run = None
  config: dict[str, Any] = {}
  summary: dict[str, Any] = {}
  history = []
  exit_code = None
  for record in iter_records(wandb_file):
    kind = record.WhichOneof("record_type")
    if kind == "run" and run is None:
      run = record.run
      _apply(config, run.config.update)
      _remove(config, run.config.remove)
    elif kind == "config":
      _apply(config, record.config.update)
      _remove(config, record.config.remove)
    elif kind == "summary":
      _apply(summary, record.summary.update)
      _remove(summary, record.summary.remove)
    elif kind == "history":
      history.append({".".join(_item_keys(item)): json.loads(item.value_json)
                      for item in record.history.item})
    elif kind == "exit":
      exit_code = record.exit.exit_code
  config.pop("_wandb", None)
  summary.pop("_wandb", None)
  return {
      "run_id": run.run_id if run else None,
      "name": (run.display_name or None) if run else None,
      "project": (run.project or None) if run else None,
      "entity": (run.entity or None) if run else None,
      "group": (run.run_group or None) if run else None,
      "job_type": (run.job_type or None) if run else None,
      "tags": list(run.tags) if run else [],
      "config": config,
      "summary": summary,
      "history": history,
      "exit_code": exit_code,
      "finished": exit_code is not None,
  }


def read_offline_run(path: str, *, reader: str = "auto", timeout_s: float = 60.0
                     ) -> dict[str, Any]:
  """Reads the latest W&B run under ``path`` (workdir, ``wandb`` dir, run dir or .wandb file).

  Args:
    path: where to look; under a workdir/``wandb`` dir the most recently started run is read.
    reader: "cli" (``wandb leet inspect``), "parser" (the built-in reader) or "auto" (CLI,
      falling back to the parser if the CLI is missing or fails).
    timeout_s: per CLI call.

  Returns:
    ``{"run_id", "name", "project", "entity", "group", "job_type", "tags", "config",
    "summary", "history", "exit_code", "finished", "run_dir", "reader"}``; ``history`` is a
    list of flat dicts with ``_step``; ``reader`` says which reader produced it.
  """
  if reader not in ("auto", "cli", "parser"):
    raise ValueError(f"reader must be 'auto', 'cli' or 'parser'; got {reader!r}")
  wandb_file = find_wandb_file(path)
  result = None
  if reader in ("auto", "cli"):
    try:
      result = _read_with_cli(wandb_file, timeout_s)
      result["reader"] = "cli"
    except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
      if reader == "cli":
        raise
      absl_logging.warning("wandb leet inspect failed (%s); using the built-in reader", e)
  if result is None:
    result = _read_with_parser(wandb_file)
    result["reader"] = "parser"
  result["run_dir"] = os.path.dirname(wandb_file)
  return result
