"""A hostile build leaves links, FIFOs and hard links where results are expected: the host refuses them.

Collecting results runs on the host, below a tree the build wrote. Each test performs the attack in a real
build (the source's debian/rules plants the entries) and checks that nothing outside the build tree is read
or copied, that the build fails with the offenders named, and that no result is kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SECRET = "HOST-SECRET-NOT-FOR-RESULTS"


def _leaked(resultdir: Path) -> list[str]:
    return [p.name for p in resultdir.iterdir() if p.is_file() and SECRET in p.read_text(errors="replace")]


def test_links_fifos_and_hard_links_among_the_results_are_refused(deb_mock, sources) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("--rebuild", str(sources["plant"]))
    assert run.rc == 1, run.out
    res = run.result
    assert res["state"] == "failed" and res["exit_code"] == 1
    err = res["error"]
    assert "/build/reproducible-path/leak_1.0_all.deb: is a symbolic link" in err, err
    assert "/build/reproducible-path/fifo_1.0_all.deb: is a FIFO" in err, err
    assert "/build/reproducible-path/hardlink_1.0_all.deb: is a hard link" in err, err
    assert res["files"] == []
    assert not _leaked(run.resultdir)
    assert not list(run.resultdir.glob("*.deb")), "nothing may be copied from a build with offending results"
    assert sources["host-secret"].read_text() == SECRET + "\n"


def test_a_result_directory_replaced_by_a_link_is_not_followed(deb_mock, sources) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("--rebuild", str(sources["swapdir"]))
    assert run.rc == 1, run.out
    res = run.result
    assert res["state"] == "failed"
    assert "/build/reproducible-path: is a symbolic link" in res["error"], res["error"]
    assert res["files"] == []
    assert not _leaked(run.resultdir)
    assert not (run.resultdir / "stolen_1.0_all.deb").exists()


def test_a_build_dependency_linking_the_package_list_out_is_refused(deb_mock, sources) -> None:  # type: ignore[no-untyped-def]
    """The buildroot listing is read from the dependency layer, which build-dependencies' scripts wrote."""
    run = deb_mock("--chain", str(sources["evil-dep"]), str(sources["evil-user"]))
    assert run.rc == 5, run.out
    summary = json.loads((run.resultdir / "result.json").read_text())
    assert [b["state"] for b in summary["builds"]] == ["success", "failed"], summary
    user_dir = run.resultdir / summary["builds"][1]["resultdir"]
    res = json.loads((user_dir / "result.json").read_text())
    assert "/var/lib/deb-mock/buildroot.tsv" in res["error"] and "symbolic link" in res["error"], res["error"]
    assert SECRET not in (user_dir / "result.json").read_text()
    assert res["buildroot"] == [] and res["files"] == []
    assert not _leaked(user_dir)
