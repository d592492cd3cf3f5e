"""Where the client takes the hub URL and token from: the command line, then the environment, then the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from deb_orchestrator.clientconfig import DEFAULT_HUB, hub_and_token


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DEB_ORCHESTRATOR_HUB", raising=False)
    monkeypatch.delenv("DEB_ORCHESTRATOR_TOKEN", raising=False)
    path = tmp_path / "config.toml"
    monkeypatch.setenv("DEB_ORCHESTRATOR_CONFIG", str(path))
    return path


def test_command_line_beats_environment_beats_config(tmp_path: Path, config: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "from-file").write_text("file-token\n")
    (tmp_path / "cfg-file").write_text("cfg-file-token\n")
    config.write_text(f'hub = "http://cfg:1"\ntoken_file = "{tmp_path / "cfg-file"}"\n')
    assert hub_and_token() == ("http://cfg:1", "cfg-file-token")
    monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", "env-token")
    monkeypatch.setenv("DEB_ORCHESTRATOR_HUB", "http://env:2")
    assert hub_and_token() == ("http://env:2", "env-token")
    # an explicit --token-file wins over the environment's token (it used to lose to it)
    assert hub_and_token(token_file=tmp_path / "from-file") == ("http://env:2", "file-token")
    assert hub_and_token("http://cli:3", token="cli-token", token_file=tmp_path / "from-file") == (
        "http://cli:3", "cli-token")


def test_defaults(config: Path) -> None:
    assert hub_and_token() == (DEFAULT_HUB, None)
