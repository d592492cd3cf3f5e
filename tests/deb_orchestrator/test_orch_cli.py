"""The CLI against a real hub: tables by default, --json for scripts, hub and token from flags, the
environment or the config file, clear errors with exit status 1 (hub said no) or 2 (usage)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from orch_helpers import FakeBuilder, make_source
from orch_hub import RunningHub

from deb_orchestrator.cli import main

MIRROR = "http://deb.debian.org/debian"


@pytest.fixture
def cli(hub: RunningHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DEB_ORCHESTRATOR_HUB", hub.url)
    monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", hub.admin_token)
    monkeypatch.setenv("DEB_ORCHESTRATOR_CONFIG", str(tmp_path / "none.toml"))

    def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_end_to_end(cli, hub: RunningHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert cli("add-tag", "base", "--external-repo", MIRROR, "trixie", "main", capsys=capsys)[0] == 0
    assert cli("add-tag", "dest", "--parent", "base", capsys=capsys)[0] == 0
    assert cli("add-tag", "build", "--parent", "dest", capsys=capsys)[0] == 0
    assert cli("add-target", "trixie", "build", "dest", capsys=capsys)[0] == 0
    code, out, _ = cli("list-tags", "--json", capsys=capsys)
    assert code == 0 and [t["name"] for t in json.loads(out)] == ["base", "build", "dest"]
    code, out, _ = cli("list-tags", capsys=capsys)
    assert "build, dest, base" in out  # a human table
    code, out, err = cli("add-host", "b1", "--arch", "amd64", capsys=capsys)
    token = out.strip().splitlines()[-1]
    assert code == 0 and token.startswith("dob_") and "deb-orchestrator builder" in err
    dsc = make_source(tmp_path, "orch-cli", "1.0")
    code, out, err = cli("build", "trixie", str(dsc), capsys=capsys)
    assert code == 0 and "build orch-cli_1.0 id 1 task 1" in out
    code, out, err = cli("build", "trixie", str(dsc), capsys=capsys)
    assert code == 0 and "submitted before" in err
    code, out, _ = cli("list-tasks", "--json", capsys=capsys)
    assert {t["method"] for t in json.loads(out)} == {"build", "buildArch"}
    FakeBuilder(hub.client(token), tmp_path / "fb").step(0)
    code, out, err = cli("watch-task", "1", capsys=capsys)
    assert code == 0 and "build orch-cli_1.0 complete" in err
    code, out, err = cli("wait-repo", "dest", "--build", "orch-cli_1.0", "--timeout", "60", capsys=capsys)
    assert code == 0 and f"deb [signed-by=/etc/apt/keyrings/dest.asc] {hub.url}/repos/dest dest main" in out
    code, out, _ = cli("list-tagged", "build", "--json", capsys=capsys)
    assert [(b["ident"], b["tag"]) for b in json.loads(out)] == [("orch-cli_1.0", "dest")]
    code, out, _ = cli("latest-build", "build", "orch-cli", capsys=capsys)
    assert code == 0 and "orch-cli_1.0" in out
    code, out, _ = cli("taskinfo", "2", capsys=capsys)
    assert code == 0 and "closed" in out and "build.log" in out
    code, out, _ = cli("download-logs", "orch-cli_1.0", "--dir", str(tmp_path / "logs"), capsys=capsys)
    assert code == 0 and (tmp_path / "logs" / "task-2" / "build.log").read_text().startswith("fake build")
    code, out, _ = cli("regen-repo", "dest", "--wait", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["generation"] >= 2
    code, out, _ = cli("list-hosts", "--json", capsys=capsys)
    assert json.loads(out)[0]["name"] == "b1"
    code, out, err = cli("create-token", "carol", "--scope", "tag", capsys=capsys)
    tag_token = out.strip().splitlines()[-1]
    assert code == 0 and tag_token.startswith("dob_")
    # a tag token may untag, not administer
    code, _, err = cli("untag-build", "dest", "orch-cli_1.0", "--token", tag_token, capsys=capsys)
    assert code == 0
    code, _, err = cli("add-tag", "x", "--token", tag_token, capsys=capsys)
    assert code == 1 and "lacks the 'admin' scope (HTTP 403)" in err
    code, out, _ = cli("list-tokens", "--json", capsys=capsys)
    carol = next(t for t in json.loads(out) if t["user"] == "carol")
    assert carol["scopes"] == ["tag"] and tag_token.startswith(carol["prefix"]) and "token" not in carol
    assert cli("revoke-token", str(carol["id"]), capsys=capsys)[0] == 0
    code, _, err = cli("untag-build", "dest", "orch-cli_1.0", "--token", tag_token, capsys=capsys)
    assert code == 1 and "invalid or revoked API token (HTTP 401)" in err


def test_cli_errors(cli, hub: RunningHub, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
                    monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = cli("build", "nope", str(make_source(tmp_path, "orch-x", "1.0")), capsys=capsys)
    assert code == 1 and "unknown target 'nope'" in err and "HTTP 404" in err
    code, _, err = cli("tag-build", "nope", "x_1", capsys=capsys)
    assert code == 1 and "unknown tag 'nope'" in err
    code, _, err = cli("taskinfo", "99", capsys=capsys)
    assert code == 1 and "no task 99" in err
    code, _, err = cli("build", "t", str(tmp_path / "missing.dsc"), capsys=capsys)
    assert code != 0 and "missing.dsc" in err
    monkeypatch.delenv("DEB_ORCHESTRATOR_TOKEN")
    code, _, err = cli("add-tag", "x", capsys=capsys)
    assert code == 1 and "missing API token" in err and "HTTP 401" in err
    # the config file supplies hub and token
    cfg = tmp_path / "config.toml"
    token_file = tmp_path / "token"
    token_file.write_text(hub.admin_token + "\n")
    cfg.write_text(f'hub = "{hub.url}"\ntoken_file = "{token_file}"\n')
    monkeypatch.setenv("DEB_ORCHESTRATOR_CONFIG", str(cfg))
    monkeypatch.delenv("DEB_ORCHESTRATOR_HUB")
    code, out, _ = cli("whoami", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["user"] == "admin"
    cfg.write_text("hub = [unclosed\n")
    code, _, err = cli("whoami", capsys=capsys)
    assert code == 2 and str(cfg) in err
    code, _, err = cli("whoami", "--hub", "http://127.0.0.1:1", "--token", "x", capsys=capsys)
    assert code == 1 and "cannot reach the hub at http://127.0.0.1:1" in err
