"""Where a client finds its hub and token: arguments, the environment (DEB_ORCHESTRATOR_HUB,
DEB_ORCHESTRATOR_TOKEN) and the config file (``hub``, ``token``, ``token_file``). Re-exported by
:mod:`deb_orchestrator.client`."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_HUB = "http://127.0.0.1:8080"


class HubConfigError(ValueError):
    """The configuration file or the token file named in it cannot be read."""


def config_path() -> Path:
    """``DEB_ORCHESTRATOR_CONFIG``, else ``$XDG_CONFIG_HOME/deb-orchestrator/config.toml``."""
    env = os.environ.get("DEB_ORCHESTRATOR_CONFIG")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return base / "deb-orchestrator" / "config.toml"


def load_config() -> dict[str, Any]:
    """The config file's keys (``hub``, ``token``, ``token_file``); empty when there is no file."""
    path = config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HubConfigError(f"cannot read the config file {path}: {exc}") from None


def read_token_file(path: str | Path) -> str:
    try:
        return Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise HubConfigError(f"cannot read the token file {path}: {exc.strerror}") from None


def hub_and_token(url: str | None = None, token: str | None = None,
                  token_file: str | Path | None = None) -> tuple[str, str | None]:
    """The hub URL and token: the arguments (``token``, then ``token_file``), then
    DEB_ORCHESTRATOR_HUB/DEB_ORCHESTRATOR_TOKEN, then the config file (``hub``, ``token``, ``token_file``); the URL
    defaults to :data:`DEFAULT_HUB`. What the command line names always wins over the environment."""
    given_hub = url or os.environ.get("DEB_ORCHESTRATOR_HUB")
    if not token and token_file:
        token = read_token_file(token_file)
    token = token or os.environ.get("DEB_ORCHESTRATOR_TOKEN")
    cfg = {} if given_hub and token else load_config()
    hub = given_hub or cfg.get("hub") or DEFAULT_HUB
    token = token or cfg.get("token")
    if not token and cfg.get("token_file"):
        token = read_token_file(cfg["token_file"])
    return str(hub), None if token is None else str(token)
