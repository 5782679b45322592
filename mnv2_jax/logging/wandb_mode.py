"""Choosing the W&B mode: online when it can work, offline otherwise, never a hang or a prompt.

``wandb.init(mode="online")`` without credentials either prompts for a key (blocking a
training job on a terminal) or fails, and without network it retries for ``init_timeout``
(90 s) before failing. So before asking for ``online`` we check, cheaply and without wandb's
private modules, that an API key is configured (``WANDB_API_KEY``, ``WANDB_IDENTITY_TOKEN_FILE``
or a netrc entry for the W&B host) and that the host accepts a TCP connection within ~2 s.
Offline runs keep everything on disk and can be uploaded later with ``wandb sync``.
"""

from __future__ import annotations

import netrc
import os
import socket
from urllib.parse import urlsplit

from absl import logging as absl_logging

MODES = ("auto", "online", "offline", "disabled")
"""Values accepted for ``config.wandb.mode``."""

DEFAULT_BASE_URL = "https://api.wandb.ai"
_ENV_MODE_ALIASES = {"online": "online", "run": "online", "offline": "offline",
                     "dryrun": "offline", "disabled": "disabled"}


def validate_mode(mode: str) -> str:
  """Returns ``mode`` or raises ValueError naming the config field and the allowed values."""
  if mode not in MODES:
    raise ValueError(f"wandb.mode must be one of {', '.join(repr(m) for m in MODES)}; "
                     f"got {mode!r}")
  return mode


def base_url() -> str:
  """The W&B server URL (``WANDB_BASE_URL`` or the public cloud)."""
  return os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL


def has_api_key(url: str | None = None) -> bool:
  """True if credentials for the W&B host are configured (env vars or netrc), not verified."""
  if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
    return True
  parts = urlsplit(url or base_url())
  hosts = [h for h in dict.fromkeys((parts.netloc, parts.hostname)) if h]
  candidates = [os.environ["NETRC"]] if os.environ.get("NETRC") else [
      os.path.expanduser("~/.netrc"), os.path.expanduser("~/_netrc")]
  for path in candidates:
    if not os.path.exists(path):
      continue
    try:
      entries = netrc.netrc(path)
    except (OSError, netrc.NetrcParseError) as e:
      absl_logging.warning("Could not read %s: %s", path, e)
      continue
    for host in hosts:
      auth = entries.authenticators(host)
      if auth and auth[2]:
        return True
  return False


def host_reachable(url: str | None = None, timeout_s: float = 2.0) -> bool:
  """True if a TCP connection to the W&B host succeeds within ``timeout_s``."""
  parts = urlsplit(url or base_url())
  if not parts.hostname:
    return False
  port = parts.port or (443 if parts.scheme == "https" else 80)
  try:
    with socket.create_connection((parts.hostname, port), timeout=timeout_s):
      return True
  except OSError:
    return False


def resolve_mode(mode: str, *, reachability_timeout_s: float = 2.0) -> tuple[str, str]:
  """Maps a configured mode to the mode given to ``wandb.init``, with the reason.

  * ``disabled`` / ``offline``: used as is.
  * ``auto``: the ``WANDB_MODE`` environment variable if set (so a job can be switched without
    touching its config), else ``online`` if a key is configured and the host is reachable,
    else ``offline``.
  * ``online``: as ``auto`` without the environment override; falls back to ``offline``
    (with a warning from the caller) when there is no key or no network.

  Returns:
    ``(effective_mode, reason)``, effective_mode being online/offline/disabled.
  """
  validate_mode(mode)
  if mode in ("offline", "disabled"):
    return mode, f"wandb.mode={mode!r}"
  if mode == "auto":
    env_mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if env_mode in _ENV_MODE_ALIASES and _ENV_MODE_ALIASES[env_mode] != "online":
      return _ENV_MODE_ALIASES[env_mode], f"WANDB_MODE={env_mode}"
  if not has_api_key():
    return "offline", "no W&B API key configured (WANDB_API_KEY or netrc)"
  if not host_reachable(timeout_s=reachability_timeout_s):
    return "offline", f"W&B host {base_url()} not reachable"
  return "online", "API key configured and host reachable"
