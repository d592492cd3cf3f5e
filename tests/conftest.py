"""Fixtures shared by every tool's tests, and how the suite is spread over pytest-xdist workers.

Expensive things (root caches, built packages, composes) live under a cache directory that survives
between CI runs (``~/.cache/deb-bootc-tests`` or ``$DEB_TEST_CACHE``); every test must also pass
when it starts empty. tests/README.md lists the shared fixtures and the parallel groups.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests that use one of these fixtures run in one xdist worker, one after the other (``--dist loadgroup``):
# the fixture is built once per run, not once per worker, and tests that change what it made (a recompose in
# the session compose's target, a deb-mock cache whose contents are asserted) never race another worker.
# A test using none of them is grouped with the other tests of its file (its module fixtures are made once).
SHARED_GROUPS: dict[str, str] = {
    "minimal_compose": "minimal-compose",  # the session compose of examples/minimal.yaml, and its target
    "update_v1": "minimal-compose",  # the update test's v1 compose; v2 is minimal_compose
    "mock_cache": "deb-mock-cache",  # deb-mock's tests assert on the state of their cache
    "commit_v1": "disk-fixture",  # imagefixtures' commit (cached, built under a lock) and its disk compose
    "boot_commit_v1": "disk-fixture",
    "compose_v1": "disk-fixture",
    "chroot": "apt-chroots",  # debarchive's trixie and bookworm apt chroots
}
# Rough serial cost of the heavy groups (seconds, from ``--durations`` of CI runs): the scheduler hands out the
# costliest groups first, so that no long group starts last. Other groups count 15 s per integration/boot/bench
# test and 1 s per other test.
GROUP_SECONDS: dict[str, float] = {
    "minimal-compose": 1000,
    "deb-mock-cache": 750,
    "disk-fixture": 250,
    "tests/e2e/test_seed_loop.py": 200,
    "tests/deb_orchestrator/test_orch_builder_integration.py": 170,
    "tests/bench/test_deb_mock_bench.py": 150,
    "tests/e2e/test_scaleout.py": 130,
    "tests/deb_orchestrator/test_orch_hub_restart.py": 100,
    "tests/deb_orchestrator/test_orch_interrupt.py": 80,
}
SLOW_MARKS = ("integration", "boot", "bench")


def xdist_groups(items: list[pytest.Item]) -> list[str]:
    """Each item's group: the group of a shared fixture it uses, else its file; tests of one file that share a
    module-scoped fixture stay together (the fixture is made once)."""
    names: list[str] = []
    for item in items:
        shared = [group for fixture, group in SHARED_GROUPS.items() if fixture in item.fixturenames]
        names.append(shared[0] if shared else item.nodeid.split("::", 1)[0])
    by_module_fixture: dict[tuple[str, str], int] = {}
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, item in enumerate(items):
        fixtures = getattr(item, "_fixtureinfo", None)
        for name, defs in (fixtures.name2fixturedefs.items() if fixtures else ()):
            if defs and defs[-1].scope == "module":
                first = by_module_fixture.setdefault((item.nodeid.split("::", 1)[0], name), i)
                a, b = root(first), root(i)
                if a != b:  # a shared group's name wins over a file's
                    parent[b], parent[a] = (a, a) if names[a] in SHARED_GROUPS.values() else (b, b)
    return [names[root(i)] for i in range(len(items))]


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("dist", "no") == "load":  # plain ``-n N``: the groups below are not optional
        config.option.dist = "loadgroup"
    if config.getoption("dist", "no") == "loadgroup":
        config.option.loadscopereorder = False  # keep the costliest-first order made below


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("dist", "no") != "loadgroup":
        return  # one process: keep the files' order
    groups: dict[str, list[pytest.Item]] = {}
    for item, group in zip(items, xdist_groups(items), strict=True):
        mark = item.get_closest_marker("xdist_group")
        if mark is None:
            item.add_marker(pytest.mark.xdist_group(group))
        else:  # a test's own mark wins
            group = str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        groups.setdefault(group, []).append(item)

    def cost(name: str) -> float:
        members = groups[name]
        slow = sum(1 for i in members if any(i.get_closest_marker(m) for m in SLOW_MARKS))
        return GROUP_SECONDS.get(name, 15 * slow + (len(members) - slow))

    items[:] = [i for name in sorted(groups, key=cost, reverse=True) for i in groups[name]]


MIRROR = os.environ.get("DEB_TEST_MIRROR", "http://deb.debian.org/debian")
HELLO_DSC = f"{MIRROR}/pool/main/h/hello/hello_2.10-3.dsc"


@pytest.fixture(scope="session")
def test_cache() -> Path:
    root = Path(os.environ.get("DEB_TEST_CACHE", Path.home() / ".cache" / "deb-bootc-tests"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def mirror() -> str:
    return MIRROR


@pytest.fixture()
def host_dir() -> Iterator[Path]:
    """A host directory anyone may read and write, holding a ``marker`` file: the target of escape attacks, so
    that only the sandbox stands between it and ns-root (pytest's own directories are 0700)."""
    d = Path("/var/tmp") / f"escape-target-{uuid.uuid4().hex[:8]}"
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    (d / "marker").write_text("HOST-SECRET-MARKER\n")
    (d / "marker").chmod(0o644)
    yield d
    shutil.rmtree(d)
