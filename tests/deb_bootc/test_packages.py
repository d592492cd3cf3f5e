"""Package lists and what an update changes; Debian version order checked against dpkg itself."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from deb_bootc import packages

PAIRS = [("1.0", "1.0"), ("1.0", "1.0-1"), ("1.0~rc1", "1.0"), ("1.0", "1.0+b1"), ("1:0.9", "2.0"),
         ("2.10-3", "2.10-3+deb12u1"), ("1.2.10", "1.2.9"), ("1.0a", "1.0"), ("1.0-1~bpo12+1", "1.0-1"),
         ("0:1.0", "1.0"), ("252.30-1~deb12u2", "257.9-1~deb13u1"), ("1.00", "1.0"), ("1.0~", "1.0~~"),
         ("7.88.1-10+deb12u14", "7.88.1-10+deb12u8"), ("2.41-12", "2.41-12+b1"), ("a", "b"), ("1-1", "1.0-1")]


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_version_order_is_dpkgs(a: str, b: str) -> None:
    dpkg = shutil.which("dpkg")
    assert dpkg is not None, "the tests compare with dpkg --compare-versions (Debian hosts have it)"
    for op, want in (("lt", packages.compare_versions(a, b) < 0), ("eq", packages.compare_versions(a, b) == 0),
                     ("gt", packages.compare_versions(a, b) > 0)):
        rc = subprocess.run([dpkg, "--compare-versions", a, op, b], check=False).returncode
        assert (rc == 0) == want, f"{a} {op} {b}"


def test_diff_added_removed_upgraded_downgraded() -> None:
    old = {"bash": "5.2.15-2", "hello": "2.10-3", "gone": "1", "same": "1", "kernel": "6.12.1-1"}
    new = {"bash": "5.2.37-2", "hello": "2.10-3", "new": "0.1", "same": "1", "kernel": "6.12.0-1"}
    ch = packages.diff(old, new)
    assert ch.added == {"new": "0.1"} and ch.removed == {"gone": "1"}
    assert ch.upgraded == {"bash": ("5.2.15-2", "5.2.37-2")}
    assert ch.downgraded == {"kernel": ("6.12.1-1", "6.12.0-1")}
    assert ch.summary() == "1 upgraded, 1 added, 1 removed, 1 downgraded"
    assert "  upgraded:   bash 5.2.15-2 -> 5.2.37-2" in ch.lines()
    assert ch.to_json()["added"] == [{"name": "new", "version": "0.1"}]
    assert packages.diff(old, dict(old)).empty


def test_package_list_metadata() -> None:
    assert packages.from_json(json.dumps({"libc6": "2.41-12", "libfoo:i386": "1:2.0~rc1"})) == {
        "libc6": "2.41-12", "libfoo:i386": "1:2.0~rc1"}
    for bad in ("[]", '{"a": 1}', '{"A B": "1"}', '{"x": "1 2"}', "not json"):
        with pytest.raises(ValueError):
            packages.from_json(bad)


def test_dpkg_status_lists_installed_packages_only() -> None:
    text = ("Package: bash\nStatus: install ok installed\nVersion: 5.2.37-2\nDescription: x\n continued: y\n\n"
            "Package: old\nStatus: deinstall ok config-files\nVersion: 1\n\n"
            "Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n")
    assert packages.from_dpkg_status(text) == {"bash": "5.2.37-2", "hello": "2.10-3"}
