"""Fixtures shared by every tool's tests, and how the suite is spread over pytest-xdist workers.

Expensive things (root caches, built packages, composes) live under a cache directory that survives
between CI runs (``~/.cache/deb-bootc-tests`` or ``$DEB_TEST_CACHE``); every test must also pass
when it starts empty. tests/README.md lists the shared fixtures and the parallel groups.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Tests that use one of these fixtures run in one xdist worker, one after the other (``-n N``, see below):
# the fixture is built once per run, not once per worker, and tests that change what it made (a recompose in
# the session compose's target, a deb-mock cache whose contents are asserted) never race another worker.
# A test using none of them is grouped with the other tests of its file (its module fixtures are made once).
SHARED_GROUPS: dict[str, str] = {
    "minimal_compose": "minimal-compose",  # the session compose of examples/minimal.yaml, and its target
    "update_v1": "update-composes",  # the update test's v1 and v2 composes (v2 in v1's target), its VM session
    "update_v2": "update-composes",
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
    # the update test's v1 and v2 composes (~210 s), their publish (~40 s), the VM session (update, rollback,
    # registry switch: ~1010 s under TCG); the longest group, handed out first
    "update-composes": 1300,
    # the session compose, the update-bytes bench (one lockfile compose, ~130 s), the two-variant compose (~160 s),
    # the hostile and recompose tests, installs from the compose (~80 s), the registry push and import tests,
    # lint and install-to-disk from the registry by docker:// (~110 s)
    "minimal-compose": 950,  # + lint IMAGE with four podman builds (one runs dracut) and a refused install (~110 s)
    # the three-variant Debian Atomic compose, one TCG boot per variant, the Particle-OS Containerfile path and the
    # Particle-OS derived manifest (its compose in the same target, lint, install, one boot)
    "tests/deb_bootc_compose/boot/test_debian_atomic.py": 1100,  # 338 + 122 + 128 + 110 + 165 + ~220 s (derived)
    # + the build options tests (test_flags_integration.py, ~40 s warm), the plugin tests (plugins/, ~45 s warm, ~65 s
    # with lintian and autopkgtest installed into the deps cache for the first time)
    "deb-mock-cache": 850,
    "disk-fixture": 210,  # the two boot fault tests: 10 s each since their timeout went from 30 s to 10 s
    "tests/e2e/test_seed_loop.py": 230,  # + the deb-bootc client built by a real builder (~28 s)
    "tests/deb_orchestrator/test_orch_builder_integration.py": 170,
    "tests/bench/test_deb_mock_bench.py": 150,
    "tests/e2e/test_scaleout.py": 130,
    "tests/deb_orchestrator/test_orch_hub_restart.py": 100,
    "tests/deb_orchestrator/test_orch_interrupt.py": 80,
    "tests/deb_orchestrator/test_orch_plugins_integration.py": 90,  # one real build with lintian (31-46 s warm)
    "tests/deb_bootc_compose/registry/test_registry_image_policy.py": 180,  # a compose with update.registry
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


GROUPS_DIR = "deb_test_groups_dir"  # workerinput key: where workers write each test's group for the controller


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config, "workerinput", None) is None and config.getoption("dist", "no") in ("load", "loadgroup"):
        config.option.loadscopereorder = False  # keep the costliest-first order the workers collect in
        config.stash[groups_dir_key] = Path(tempfile.mkdtemp(prefix="deb-test-groups-"))


def pytest_unconfigure(config: pytest.Config) -> None:
    groups_dir = config.stash.get(groups_dir_key, None)
    if groups_dir is not None:
        shutil.rmtree(groups_dir, ignore_errors=True)


groups_dir_key = pytest.StashKey[Path]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:  # xdist, in the controller, for each worker
    groups_dir = node.config.stash.get(groups_dir_key, None)
    if groups_dir is not None:
        node.workerinput[GROUPS_DIR] = str(groups_dir)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``-n N`` (``--dist load`` or ``loadgroup``): a group's tests go to one worker, groups in collection order.
    (xdist's own loadgroup renames tests after their xdist_group mark, which pytest 9.2 no longer allows.)"""
    groups_dir = config.stash.get(groups_dir_key, None)
    if groups_dir is None:
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # every worker has collected (and written its file) before scheduling
                self.groups = {}
                for f in sorted(groups_dir.glob("*.json")):
                    self.groups.update(json.loads(f.read_text()))
            return self.groups.get(nodeid, nodeid)

    return GroupScheduling(config, log)


@pytest.hookimpl(trylast=True)  # after deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups_dir = getattr(config, "workerinput", {}).get(GROUPS_DIR)
    if groups_dir is None:
        return  # not an xdist worker: keep the files' order
    groups: dict[str, list[pytest.Item]] = {}
    for item, group in zip(items, xdist_groups(items), strict=True):
        mark = item.get_closest_marker("xdist_group")
        if mark is not None:  # a test's own mark wins
            group = str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        groups.setdefault(group, []).append(item)

    def cost(name: str) -> float:
        members = groups[name]
        slow = sum(1 for i in members if any(i.get_closest_marker(m) for m in SLOW_MARKS))
        return GROUP_SECONDS.get(name, 15 * slow + (len(members) - slow))

    items[:] = [i for name in sorted(groups, key=cost, reverse=True) for i in groups[name]]
    out = Path(groups_dir) / f"{config.workerinput['workerid']}.json"  # type: ignore[attr-defined]
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({i.nodeid: name for name, members in groups.items() for i in members}))
    tmp.rename(out)


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
