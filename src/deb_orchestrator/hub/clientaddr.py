"""The client's address the audit log records: the address the hub's socket saw (the *peer*) or, only when that
peer is a trusted proxy (``hub --trusted-proxy ADDR``), the address the proxies report in one header.

The header is ``X-Forwarded-For`` unless the hub is told ``--forwarded-header forwarded`` (RFC 7239): only one
of them is read, because a proxy that sets one passes the other through as the client sent it. Proxies append
to the header, so everything left of what the nearest proxy added is the client's to write. It is read from the
right: trusted proxies are skipped, and the first address that is not one is the client. With no trusted
proxy, or an untrusted peer, the headers are ignored (anyone can send them).
"""

from __future__ import annotations

import functools
import ipaddress
import re

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HEADERS = ("x-forwarded-for", "forwarded")
MAX_HOPS = 30  # a longer chain is someone's padding: only its right end matters
_SAFE = re.compile(r"[^A-Za-z0-9._:\[\]-]")


def parse_network(spec: str) -> Network:
    """``ADDR`` or ``ADDR/PREFIX`` (IPv4 or IPv6), as ``--trusted-proxy`` takes it; ValueError saying what is
    wrong otherwise."""
    try:
        return ipaddress.ip_network(spec.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{spec!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24, ::1)") from None


@functools.lru_cache(maxsize=16)
def networks(specs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(parse_network(s) for s in specs)


def parse_address(text: str) -> Address | None:
    """An address as proxies write it: ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]:80``,
    quoted (RFC 7239); IPv4-mapped IPv6 as IPv4. None for anything else (``unknown``, ``_hidden``)."""
    t = text.strip().strip('"').strip()
    if t.startswith("["):
        t = t[1:t.find("]")] if "]" in t else t[1:]
    elif t.count(":") == 1:
        t = t.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(t)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _forwarded_for(values: list[str]) -> list[str]:
    """The ``for=`` of each element of RFC 7239 ``Forwarded`` headers (``unknown`` where an element has none)."""
    hops = []
    for value in values:
        for element in value.split(","):
            found = "unknown"
            for pair in element.split(";"):
                key, _, val = pair.partition("=")
                if key.strip().lower() == "for":
                    found = val
            hops.append(found)
    return hops


def _trusted(addr: Address | None, trusted: tuple[Network, ...]) -> bool:
    return addr is not None and any(addr in net for net in trusted)


def _shown(text: str) -> str:
    """A hop that is no address (``unknown``, an obfuscated name), as a trusted proxy wrote it: bounded, plain."""
    return _SAFE.sub("", text.strip().strip('"'))[:64] or "unknown"


def client_address(peer: str | None, headers: list[str], trusted: tuple[Network, ...],
                   header: str = "x-forwarded-for") -> str:
    """The client's address: ``peer`` unless it is a trusted proxy, then the right-most address in the proxies'
    ``header`` values (in the order received) that is not a trusted proxy."""
    peer_text = str(parse_address(peer) or _shown(peer)) if peer else "unknown"
    if not trusted or not _trusted(parse_address(peer or ""), trusted):
        return peer_text
    hops = _forwarded_for(headers) if header == "forwarded" else [h for v in headers for h in v.split(",")]
    hops = [h for h in hops if h.strip()][-MAX_HOPS:]
    for hop in reversed(hops):
        addr = parse_address(hop)
        if addr is None:
            return _shown(hop)
        if not _trusted(addr, trusted):
            return str(addr)
    return str(parse_address(hops[0])) if hops else peer_text
