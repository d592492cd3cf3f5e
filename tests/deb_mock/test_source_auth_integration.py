"""Sources fetched over the network are authenticated before anything unpacks them.

A local HTTP server plays the network attacker (or a mirror nobody signs for): it serves a tampered copy of
a real Debian .dsc beside the real, signed indices of the mirror; an unsigned .dsc that is in no index; and a
.dsc signed with a test key. deb-mock must refuse the first two before fetching or unpacking anything
(unless --no-verify-source, which is recorded) and accept the signed one with the key configured.
"""

from __future__ import annotations

import shutil
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from dm_helpers import HELLO

from debarchive.signing import SigningKey
from httpserve import QuietHandler, serve_directory

pytestmark = pytest.mark.integration

MIRROR = HELLO.split("/pool/")[0]


def _recording_handler(seen: list[str]) -> type[SimpleHTTPRequestHandler]:
    class Recording(QuietHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            super().do_GET()

    return Recording


def _copy_source(dsc: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in dsc.parent.glob(dsc.name.removesuffix(".dsc") + "*"):
        shutil.copy2(f, dest / f.name)
    return dest / dsc.name


def test_a_tampered_dsc_over_plain_http_is_refused_before_unpacking(deb_mock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The attacker serves the mirror's real signed indices but changes the .dsc (here: a build-dependency)."""
    root = tmp_path / "www" / "debian"
    pool = root / "pool" / "main" / "h" / "hello"
    pool.mkdir(parents=True)
    dists = root / "dists" / "bookworm"
    (dists / "main" / "source").mkdir(parents=True)
    with httpx.Client(timeout=300, follow_redirects=True) as client:
        for rel in ("InRelease", "main/source/Sources.xz"):
            (dists / rel).write_bytes(client.get(f"{MIRROR}/dists/bookworm/{rel}").raise_for_status().content)
        real = client.get(HELLO).raise_for_status().text
    assert "Build-Depends: " in real
    (pool / "hello_2.10-3.dsc").write_text(real.replace("Build-Depends: ", "Build-Depends: evil-helper, ", 1))
    seen: list[str] = []
    with serve_directory(tmp_path / "www", _recording_handler(seen)) as base:
        url = f"{base}/debian/pool/main/h/hello/hello_2.10-3.dsc"
        run = deb_mock("--rebuild", url)
    assert run.rc == 2, run.out
    res = run.result
    assert res["state"] == "error" and res["exit_code"] == 2
    assert url in res["error"] and "tampered" in res["error"] and "bookworm" in res["error"], res["error"]
    assert "source_verified" not in res or res["source_verified"] is False
    assert not [p for p in seen if "hello_2.10" in p and not p.endswith(".dsc")], "no file of it may be fetched"
    assert "dpkg-source" not in run.log("build.log") and "Start: build" not in run.log("state.log")


def test_an_unsigned_dsc_is_refused_unless_no_verify_source(deb_mock, sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    www = tmp_path / "www"
    dsc = _copy_source(sources["simple"], www)
    seen: list[str] = []
    with serve_directory(www, _recording_handler(seen)) as base:
        url = f"{base}/{dsc.name}"
        refused = deb_mock("--rebuild", url)
        assert refused.rc == 2, refused.out
        err = refused.result["error"]
        assert url in err and "cannot authenticate" in err and "--no-verify-source" in err, err
        assert seen == [f"/{dsc.name}"], seen  # the .dsc only: its tarball was never fetched
        assert "Start: build" not in refused.log("state.log")
        unchecked = deb_mock("--no-verify-source", "--rebuild", url)
    assert unchecked.rc == 0, unchecked.out
    res = unchecked.result
    assert res["state"] == "success"
    assert res["source_verified"] is False and res["source_trust"] == "none"
    assert "--no-verify-source" in res["source_verification"]
    assert "source: NOT VERIFIED" in unchecked.log("state.log") and "source: NOT VERIFIED" in unchecked.log("root.log")


def test_a_dsc_signed_by_a_configured_key_is_accepted(deb_mock, sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = SigningKey.ensure(tmp_path / "gnupg", uid="deb-mock test uploader <uploader@example.org>")
    keyring = key.export_public(tmp_path / "uploader.asc")
    www = tmp_path / "www"
    dsc = _copy_source(sources["simple"], www)
    dsc.write_bytes(key.clearsign(dsc.read_bytes()))
    # the same config name as the shared cache's, so the root cache is shared; only source_keyrings differ
    confdir = tmp_path / "conf"
    confdir.mkdir()
    (confdir / "debian-trixie-amd64.toml").write_text(
        f'include = "templates/debian.toml"\nsuite = "trixie"\nsource_keyrings = ["{keyring}"]\n'
    )
    with serve_directory(www) as base:
        url = f"{base}/{dsc.name}"
        run = deb_mock("--configdir", str(confdir), "-r", "debian-trixie-amd64", "--rebuild", url)
        assert run.rc == 0, run.out
        res = run.result
        assert res["source_verified"] is True and res["source_trust"] == "signature"
        assert key.fingerprint in res["source_verification"]
        # the same .dsc with a changed field: the signature no longer holds
        text = dsc.read_text()
        dsc.write_text(text.replace("Maintainer: deb-mock tests", "Maintainer: mallory", 1))
        bad = deb_mock("--configdir", str(confdir), "-r", "debian-trixie-amd64", "--rebuild", url)
    assert bad.rc == 2, bad.out
    assert "cannot authenticate" in bad.result["error"] and "bad signature" in bad.result["error"]



def test_the_api_refuses_a_dsc_whose_sha256_is_not_the_expected_one(sources, mock_cache, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The builder's path: a caller that knows the .dsc's checksum (e.g. the hub's record) passes it."""
    from deb_mock.api import build
    from deb_mock.request import BuildRequest

    www = tmp_path / "www"
    dsc = _copy_source(sources["simple"], www)
    seen: list[str] = []
    with serve_directory(www, _recording_handler(seen)) as base:
        result = build(
            BuildRequest(
                source=f"{base}/{dsc.name}",
                resultdir=tmp_path / "out",
                config="debian-trixie-amd64",
                cache_dir=mock_cache,
                expected_dsc_sha256="0" * 64,
            )
        )
    assert result.exit_code == 2 and result.state == "error"
    assert result.error is not None and "is not the expected " + "0" * 64 in result.error
    assert seen == [f"/{dsc.name}"]
    assert "source_verified" not in (tmp_path / "out" / "result.json").read_text()
