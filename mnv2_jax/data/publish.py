"""Publishing a prepared dataset directory atomically, safe under concurrency.

Why: several processes often prepare the same dataset at the same moment (a
sweep's parallel runs, the processes of a multi-host job, pytest-xdist
workers), possibly on several hosts sharing `data_dir` over NFS. TFDS builds
into `<version dir's parent>/incomplete.<random>_<version>` and renames it at
the end, but every concurrent builder does so into the same parent, and all
but the first fail with `FileExistsError: Cannot rename ...` (tfds 4.9.10).

Scheme (`publish_dir`):
  1. `build(staging)` writes the complete result into a private staging
     directory `<root>/.mnv2-prepare.<host>.<pid>.<random>/` (`root` is the
     data_dir, so the final rename stays on one filesystem); tfds's own
     `incomplete.*` directories live inside it, out of everyone's way.
  2. ONE `os.rename(<staging>/<rel>, <root>/<rel>)` publishes the finished
     version directory. rename(2) is atomic: readers see either no directory
     (or an empty one) or the complete one, never a partial one. An empty
     destination directory is replaced (rename(2) allows that), so it does
     not block preparation.
  3. A loser (the destination is already non-empty) deletes its staging copy
     and reuses the winner's result after checking `is_complete`. A
     non-empty destination that is not complete is not something this scheme
     (or TFDS's own) ever publishes; it is reported, never deleted.
  4. Staging directories of crashed preparers are removed when they were made
     on this host by a process that no longer exists; those of other hosts
     (their pids mean nothing here) are left alone and do not affect anyone:
     TFDS only looks under `<data_dir>/<dataset name>/`, and no dataset name
     starts with a dot.

What TFDS checks: `builder.is_prepared()` only asks whether the version dir has
a valid version name and holds `dataset_info.json` (written last by TFDS), so
a version dir must never become visible before it is complete; with this
scheme it never is. Leftover `incomplete.*` dirs of older code next to the
version dir are not valid version names and are ignored by TFDS.

Guarantees and limits:
  * Concurrent preparers never fail because of each other and never see a
    partial dataset; exactly one result is kept. Each of them does the full
    build work (there is no lock): prepare large datasets (imagenet2012) once,
    before starting many processes (`mnv2-sweep` does so).
  * NFS: rename is one server-side operation, atomic for all clients. A
    retransmitted RENAME (NFSv3 over a lossy network) may report an error
    although it succeeded; that is detected (the staging copy is gone and the
    destination is complete) and treated as success. Another host may see the
    new directory only after its attribute cache expires (`acdirmin`/`acdirmax`,
    30-60 s by default); a loser therefore re-checks completeness for up to
    `wait_s` seconds (so a truly broken destination is reported that late).
  * Not for object stores (GCS, S3) without atomic directory rename.
  * A crashed preparer on another host leaves its staging directory until
    someone deletes it (safe to delete once that host's preparer is gone).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable

STAGING_PREFIX = ".mnv2-prepare"


class PublishError(RuntimeError):
  """The destination exists but is not a complete prepared directory."""


def _host() -> str:
  return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname()) or "unknown"


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Exists, owned by someone else.
    return True
  return True


def staging_owner(name: str) -> tuple[str, int] | None:
  """(host, pid) encoded in a staging directory name, or None if not one."""
  parts = name.split(".")
  if len(parts) != 5 or f".{parts[1]}" != STAGING_PREFIX or not parts[3].isdigit():
    return None
  return parts[2], int(parts[3])


def remove_stale_staging(root: str) -> list[str]:
  """Deletes staging dirs under `root` left by dead processes of this host.

  Returns the deleted paths. Staging dirs of live processes, and of other
  hosts, are kept.
  """
  removed = []
  try:
    names = os.listdir(root)
  except FileNotFoundError:
    return removed
  host = _host()
  for name in names:
    owner = staging_owner(name)
    if owner is None or owner[0] != host or _pid_alive(owner[1]):
      continue
    path = os.path.join(root, name)
    shutil.rmtree(path, ignore_errors=True)  # Another process may race us.
    removed.append(path)
  return removed


def publish_dir(root: str, rel: str, build: Callable[[str], None],
                is_complete: Callable[[], bool], wait_s: float = 60.0) -> bool:
  """Builds `<root>/<rel>` via a private staging dir and one atomic rename.

  Args:
    root: the directory holding the result (the TFDS data_dir); created if
      missing. The staging dir is made directly under it.
    rel: the relative path of the result under `root` (e.g.
      "sklearn_digits/1.0.0"), also under the staging dir.
    build: `build(staging_root)` must leave the complete result at
      `<staging_root>/<rel>`; it may use the staging dir for anything else.
    is_complete: whether `<root>/<rel>` holds a complete result (re-checked
      from disk on each call).
    wait_s: how long a loser waits for the winner's result to become visible
      (network filesystems cache directory attributes).

  Returns:
    True if this call published the result, False if another preparer did.

  Raises:
    PublishError: `<root>/<rel>` is non-empty but incomplete (the message
      names it and says to delete it).
    Whatever `build` raises (the staging dir is removed first).
  """
  root = os.path.abspath(root)
  dest = os.path.join(root, rel)
  os.makedirs(root, exist_ok=True)
  remove_stale_staging(root)
  staging = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}.{_host()}.{os.getpid()}.",
                             dir=root)
  try:
    build(staging)
    source = os.path.join(staging, rel)
    if not os.path.isdir(source):
      raise PublishError(f"preparing into {staging!r} did not produce {source!r}")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    try:
      os.rename(source, dest)
      return True
    except OSError as e:
      if e.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOENT):
        raise
      # EEXIST/ENOTEMPTY: someone published first. ENOENT with our source gone:
      # a retransmitted NFS rename that had in fact succeeded.
      won = e.errno == errno.ENOENT and not os.path.exists(source)
      if e.errno == errno.ENOENT and not won:
        raise
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  deadline = time.monotonic() + wait_s
  while not is_complete():
    if time.monotonic() >= deadline:
      if not os.path.exists(dest):
        raise PublishError(
            f"the staging copy for {dest!r} disappeared before it was "
            "published (deleted by another process?); prepare again.")
      raise PublishError(
          f"{dest!r} exists and is not empty, but is not a complete prepared "
          "dataset (no preparer in mnv2_jax or TFDS leaves one like that). "
          "Delete it and prepare again.")
    time.sleep(0.1)
  return won
