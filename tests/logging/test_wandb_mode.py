"""Mode resolution: auto/online fall back to offline without a key or without network."""

from __future__ import annotations

import socket

import pytest

from mnv2_jax.logging import wandb_mode


def test_invalid_mode_names_the_field_and_allowed_values():
  with pytest.raises(ValueError) as e:
    wandb_mode.validate_mode("ofline")
  message = str(e.value)
  assert "wandb.mode" in message and "'ofline'" in message
  for mode in ("auto", "online", "offline", "disabled"):
    assert repr(mode) in message


@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_explicit_modes_are_used_as_is(mode, monkeypatch):
  monkeypatch.setenv("WANDB_MODE", "online")
  assert wandb_mode.resolve_mode(mode)[0] == mode


def test_auto_without_key_is_offline():
  assert not wandb_mode.has_api_key()
  mode, reason = wandb_mode.resolve_mode("auto")
  assert mode == "offline" and "no W&B API key" in reason


def test_online_without_key_falls_back_to_offline():
  assert wandb_mode.resolve_mode("online")[0] == "offline"


@pytest.mark.parametrize("env,expected", [
    ("offline", "offline"), ("dryrun", "offline"), ("disabled", "disabled")])
def test_auto_follows_wandb_mode_env(env, expected, monkeypatch):
  monkeypatch.setenv("WANDB_MODE", env)
  assert wandb_mode.resolve_mode("auto") == (expected, f"WANDB_MODE={env}")


def test_key_but_unreachable_host_is_offline(monkeypatch):
  monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
  assert wandb_mode.has_api_key()
  mode, reason = wandb_mode.resolve_mode("auto", reachability_timeout_s=1.0)
  assert mode == "offline" and "not reachable" in reason


def test_netrc_key_and_reachable_host_is_online(monkeypatch, tmp_path):
  with socket.socket() as server:
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("WANDB_BASE_URL", url)
    netrc_path = tmp_path / "netrc"
    netrc_path.write_text(f"machine 127.0.0.1:{port}\n  login user\n  password {'k' * 40}\n")
    netrc_path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc_path))
    assert wandb_mode.has_api_key()
    assert wandb_mode.host_reachable(url, timeout_s=1.0)
    assert wandb_mode.resolve_mode("auto") == ("online", "API key configured and host reachable")


def test_netrc_for_another_host_is_not_a_key(monkeypatch, tmp_path):
  netrc_path = tmp_path / "netrc"
  netrc_path.write_text("machine example.org\n  login user\n  password secret\n")
  netrc_path.chmod(0o600)
  monkeypatch.setenv("NETRC", str(netrc_path))
  assert not wandb_mode.has_api_key("https://api.wandb.ai")
