"""Pure logic of the audit log: the client's address through proxies, bounded records, time arguments."""

from __future__ import annotations

import pytest

from deb_orchestrator.cli.audit import since_seconds
from deb_orchestrator.cli.common import UsageError
from deb_orchestrator.hub import audit
from deb_orchestrator.hub.clientaddr import client_address, networks, parse_address, parse_network

PROXIES = networks(("10.0.0.0/24", "2001:db8:1::/48"))


@pytest.mark.parametrize(("peer", "headers", "expected"), [
    ("192.0.2.7", ["198.51.100.1"], "192.0.2.7"),  # an untrusted peer: its header is anyone's
    ("10.0.0.5", ["198.51.100.1"], "198.51.100.1"),
    ("10.0.0.5", ["203.0.113.66, 198.51.100.1"], "198.51.100.1"),  # what the client wrote to the left is not read
    ("10.0.0.5", ["198.51.100.1, 10.0.0.9"], "198.51.100.1"),  # a chain of trusted proxies
    ("10.0.0.5", ["198.51.100.1", "10.0.0.9"], "198.51.100.1"),  # several header lines, in order
    ("10.0.0.5", ["10.0.0.8, 10.0.0.9"], "10.0.0.8"),  # nothing but proxies: the furthest
    ("10.0.0.5", [], "10.0.0.5"),  # no header: the proxy itself
    ("10.0.0.5", ["198.51.100.1:5678"], "198.51.100.1"),
    ("10.0.0.5", ["[2001:db8:2::1]:443"], "2001:db8:2::1"),
    ("10.0.0.5", ["unknown"], "unknown"),
    ("10.0.0.5", ["<script>alert(1)</script>"], "scriptalert1script"),  # a proxy's oddity, made plain and short
    ("::ffff:10.0.0.5", ["198.51.100.1"], "198.51.100.1"),  # IPv4-mapped peers are IPv4
    ("2001:db8:1::5", ["198.51.100.1"], "198.51.100.1"),
    (None, ["198.51.100.1"], "unknown"),
])
def test_x_forwarded_for(peer: str | None, headers: list[str], expected: str) -> None:
    assert client_address(peer, headers, PROXIES) == expected


def test_no_trusted_proxy_ignores_every_header() -> None:
    assert client_address("10.0.0.5", ["198.51.100.1"], ()) == "10.0.0.5"
    assert client_address("10.0.0.5", ["for=198.51.100.1"], (), "forwarded") == "10.0.0.5"


@pytest.mark.parametrize(("headers", "expected"), [
    (["for=198.51.100.1"], "198.51.100.1"),
    (['for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711"'], "2001:db8:cafe::17"),
    (["for=198.51.100.1, for=10.0.0.9;proto=https"], "198.51.100.1"),
    (["proto=https"], "unknown"),  # an element without for=
    (["for=_hidden"], "_hidden"),  # an obfuscated identifier (RFC 7239)
])
def test_forwarded(headers: list[str], expected: str) -> None:
    assert client_address("10.0.0.5", headers, PROXIES, "forwarded") == expected


def test_a_long_chain_is_cut_from_the_left() -> None:
    padding = ", ".join(["10.0.0.9"] * 100)
    assert client_address("10.0.0.5", [f"198.51.100.1, {padding}"], PROXIES) == "10.0.0.9"


def test_parse() -> None:
    assert str(parse_network("10.0.0.5")) == "10.0.0.5/32"
    assert str(parse_network("10.0.0.5/24")) == "10.0.0.0/24"
    assert str(parse_network("::1")) == "::1/128"
    with pytest.raises(ValueError, match="not an IP address or network"):
        parse_network("proxy.example.org")
    assert parse_address('"[::1]:80"') is not None and parse_address("nope") is None


def test_bounded_and_secret_free_values() -> None:
    assert audit.bounded("x" * 1000) == "x" * audit.MAX_STRING + "…"
    assert audit.bounded(list(range(60)))[-1] == "… and 10 more"
    assert audit.bounded({"url": "https://user:s3cret@mirror.example/debian"}) == \
        {"url": "https://***@mirror.example/debian"}
    assert audit.key_digest("KEY") is not None and "KEY" not in str(audit.key_digest("KEY"))
    assert audit.changed({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": [2, 3], "c": [None, 4]}


def test_time_arguments() -> None:
    assert since_seconds("2h", "--since", now=10_000.0) == 10_000.0 - 7200
    assert since_seconds("30m", "--since", now=10_000.0) == 10_000.0 - 1800
    assert since_seconds("2026-12-05T10:00:00Z", "--since") == 1796464800.0
    assert audit.parse_time("2026-12-05T10:00:00", "since") == 1796464800.0  # the API: UTC without a zone
    assert audit.parse_time("1796464800.5", "since") == 1796464800.5
    with pytest.raises(UsageError, match="ISO 8601"):
        since_seconds("yesterday", "--since")
    with pytest.raises(ValueError, match="not a time"):
        audit.parse_time("nan", "since")
