"""Fixtures for debarchive: a signing key, tiny real .deb files and a real source package."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apt_chroot import AptChroot, RecordingHandler, Served, chroot_tarball, unpack_chroot
from debarchive_helpers import DebMaker, assert_no_gpg_agent_left, build_deb

from debarchive.signing import SigningKey


@pytest.fixture(scope="session", autouse=True)
def no_gpg_agent_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every GnuPG agent these tests (or the code under test) start must be stopped again."""
    yield
    # debarchive.signing reaches each home through a short link /tmp/dak-*/h, removed after use
    assert_no_gpg_agent_left(str(tmp_path_factory.getbasetemp()), "/tmp/dak-")


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return SigningKey.ensure(tmp_path_factory.mktemp("key") / "gnupg", uid="debarchive tests <tests@localhost>")


@pytest.fixture
def make_deb(tmp_path: Path) -> DebMaker:
    out = tmp_path / "debs"
    out.mkdir()

    def make(name: str, version: str, arch: str = "all", **kwargs: str) -> Path:
        return build_deb(out, name, version, arch, **kwargs)

    return make


SUITES = ("trixie", "bookworm")


@pytest.fixture(scope="session")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    requests: list[str] = []
    hooks: dict[str, Callable[[], None]] = {}
    handler_class = type("Handler", (RecordingHandler,), {"requests": requests, "hooks": hooks})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler_class, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(root, f"http://127.0.0.1:{server.server_address[1]}", requests, hooks)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session", params=SUITES)
def chroot(request: pytest.FixtureRequest, test_cache: Path, mirror: str,
           tmp_path_factory: pytest.TempPathFactory) -> AptChroot:
    suite: str = request.param
    tarball = chroot_tarball(test_cache, suite, mirror)
    return unpack_chroot(tarball, tmp_path_factory.mktemp(f"chroot-{suite}") / "root", suite)
