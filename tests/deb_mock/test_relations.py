from __future__ import annotations

from deb_mock.session.relations import applicable, arch_matches, parse_simulation


def test_arch_and_profile_restrictions() -> None:
    rels = applicable(
        "debhelper-compat (= 13), libfoo [!amd64], bar [amd64] | baz, qux <!nocheck>, quux <nocheck>, "
        "gcc:native, texinfo [linux-any], hurd-only [hurd-any]",
        "amd64",
    )
    assert [r.text for r in rels] == ["debhelper-compat (= 13)", "bar | baz", "qux", "gcc:native", "texinfo"]
    assert rels[1].packages == ("bar", "baz")


def test_profiles_can_be_enabled() -> None:
    rels = applicable("qux <!nocheck>, quux <nocheck>", "amd64", frozenset({"nocheck"}))
    assert [r.text for r in rels] == ["quux"]


def test_arch_wildcards() -> None:
    assert arch_matches("any", "amd64")
    assert arch_matches("linux-any", "amd64")
    assert arch_matches("any-amd64", "amd64")
    assert not arch_matches("any-arm64", "amd64")
    assert not arch_matches("kfreebsd-any", "amd64")


def test_parse_simulation() -> None:
    out = (
        "NOTE: This is only a simulation!\n"
        "Inst libfoo (1.2-3 Debian:13.2/stable [amd64])\n"
        "Inst bar [1.0] (1.1 Debian:13.2/stable [all])\n"
        "Conf libfoo (1.2-3 Debian:13.2/stable [amd64])\n"
    )
    assert parse_simulation(out) == ["bar=1.1:all", "libfoo=1.2-3:amd64"]
