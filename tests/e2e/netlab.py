"""A small network for the scale-out test: one bridge on the host, one network namespace per machine (hub,
builders) joined to it by a veth pair, and the way out to the Debian mirror through the host.

Way out: the host routes and masquerades (``ip_forward`` + an iptables MASQUERADE rule for the lab's subnet)
rather than a proxy on the host, because every tool in the builders (mmdebstrap, apt inside deb-mock's
sandbox, the hub's downloads) then works unchanged: deb-mock runs apt with a clean environment, so an
``http_proxy`` would not reach it, and DNS needs no special handling either. PostgreSQL on the host listens
on 127.0.0.1 only and must not be reconfigured by a test; a TCP relay on the bridge address stands in for
the ``listen_addresses``/``pg_hba.conf`` lines a real deployment has (docs/deployment.md).

Everything made carries the prefix ``dbsx<pid>`` (bridge, veths, namespaces, iptables rule comments), so a
later run removes what a killed run left behind (:func:`preclean`: only entries whose pid is gone) and
:meth:`Lab.close` removes everything this run made, also after a failure.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import re
import select
import socket
import socketserver
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

PREFIX = "dbsx"
FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
NAME = re.compile(rf"^{PREFIX}(\d+)")


def sh(*argv: str, check: bool = True) -> str:
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {res.returncode}: {res.stderr.strip()}")
    return res.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _nat_rules() -> list[tuple[str, str, str]]:
    """(table, chain-spec for -D, pid) of every iptables rule with a lab comment."""
    out = []
    for table in ("nat", "filter"):
        for line in sh("iptables", "-w", "-t", table, "-S").splitlines():
            m = re.search(rf'--comment "?({PREFIX}(\d+))"?', line)
            if m and line.startswith("-A "):
                out.append((table, line[3:], m.group(2)))
    return out


def leftovers(owned_by_dead_only: bool = True) -> dict[str, list[str]]:
    """What earlier runs left (namespaces, links, iptables rules), limited to runs whose process is gone."""

    def dead(name: str) -> bool:
        m = NAME.match(name)
        return m is not None and (not owned_by_dead_only or not _alive(int(m.group(1))))

    namespaces = [line.split()[0] for line in sh("ip", "netns", "list").splitlines() if line.strip()]
    links = [line.split()[0].split("@")[0] for line in sh("ip", "-br", "link").splitlines() if line.strip()]
    rules = [spec for _t, spec, pid in _nat_rules() if not owned_by_dead_only or not _alive(int(pid))]
    return {
        "namespaces": [n for n in namespaces if dead(n)],
        "links": [link for link in links if dead(link)],
        "rules": rules,
    }


def preclean() -> list[str]:
    """Remove what killed earlier runs left behind; returns what was removed."""
    removed = []
    for ns in leftovers()["namespaces"]:
        _remove_namespace(ns)
        removed.append(f"netns {ns}")
    for link in leftovers()["links"]:
        sh("ip", "link", "delete", link, check=False)
        removed.append(f"link {link}")
    for table, spec, pid in _nat_rules():
        if not _alive(int(pid)):
            sh("iptables", "-w", "-t", table, "-D", *_split(spec), check=False)
            removed.append(f"iptables -t {table} {spec}")
    return removed


def _split(spec: str) -> list[str]:
    import shlex

    return shlex.split(spec)


def _kill_namespace_processes(ns: str) -> None:
    pids = sh("ip", "netns", "pids", ns, check=False).split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)


def _remove_namespace(ns: str) -> None:
    _kill_namespace_processes(ns)
    sh("ip", "netns", "delete", ns, check=False)


def _pick_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.231.0.0/16 that no route on the host uses (runs at once get different ones)."""
    routes = sh("ip", "-4", "route", "show", "table", "all")
    used = {ipaddress.ip_network(m, strict=False) for m in re.findall(r"\b(\d+\.\d+\.\d+\.\d+/\d+)", routes)}
    start = os.getpid() % 200
    for i in range(250):
        net = ipaddress.IPv4Network(f"10.231.{(start + i) % 250 + 1}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /24 in 10.231.0.0/16 for the lab network")


class TcpRelay:
    """Accepts on ``listen`` and pipes each connection to ``upstream`` (both (host, port))."""

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int]) -> None:
        up = upstream

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(up, timeout=10) as other:
                    other.settimeout(None)
                    socks = [self.request, other]
                    while True:
                        ready, _, _ = select.select(socks, [], [], 30)
                        for s in ready:
                            data = s.recv(1 << 16)
                            if not data:
                                return
                            (other if s is self.request else self.request).sendall(data)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(listen, Handler)
        self.address = self.server.server_address
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Lab:
    """The lab network; ``add(name)`` makes a machine (namespace) and returns its address."""

    def __init__(self) -> None:
        self.tag = f"{PREFIX}{os.getpid()}"
        self.bridge = f"{self.tag}br"
        self.undo: list[Callable[[], object]] = []
        self.machines: dict[str, str] = {}
        self.net = _pick_subnet()
        hosts = list(self.net.hosts())
        self.host_ip = str(hosts[0])
        self._free = hosts[1:]
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.undo.append(lambda: sh("ip", "link", "delete", self.bridge, check=False))
        sh("ip", "addr", "add", f"{self.host_ip}/{self.net.prefixlen}", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        rules = [
            ("nat", ["POSTROUTING", "-s", str(self.net), "!", "-o", self.bridge, "-j", "MASQUERADE"]),
            ("filter", ["FORWARD", "-i", self.bridge, "-j", "ACCEPT"]),
            ("filter", ["FORWARD", "-o", self.bridge, "-j", "ACCEPT"]),
        ]
        for table, (chain, *rest) in rules:
            spec = [chain, *rest, "-m", "comment", "--comment", self.tag]
            sh("iptables", "-w", "-t", table, "-I", *spec)
            self.undo.append(functools.partial(sh, "iptables", "-w", "-t", table, "-D", *spec, check=False))
        before = FORWARD.read_text().strip()
        if before != "1":
            FORWARD.write_text("1\n")
            self.undo.append(self._restore_forwarding)

    def _restore_forwarding(self) -> None:
        # another live lab (a parallel run) still needs it: leave it to that one
        others = [n for n in leftovers(owned_by_dead_only=False)["links"]
                  if n.endswith("br") and n != self.bridge and _alive(int(NAME.match(n).group(1)))]  # type: ignore[union-attr]
        if not others:
            FORWARD.write_text("0\n")

    def add(self, name: str) -> str:
        ns = f"{self.tag}-{name}"
        index = len(self.machines) + 1
        host_end, ns_end = f"{self.tag}h{index}", f"{self.tag}n{index}"
        ip = str(self._free.pop(0))
        sh("ip", "netns", "add", ns)
        self.undo.append(lambda: _remove_namespace(ns))
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        self.undo.append(lambda: sh("ip", "link", "delete", host_end, check=False))
        sh("ip", "link", "set", ns_end, "netns", ns)
        sh("ip", "link", "set", host_end, "master", self.bridge, "up")
        sh("ip", "-n", ns, "link", "set", ns_end, "name", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/{self.net.prefixlen}", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", self.host_ip)
        self.machines[name] = ip
        return ip

    def namespace(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def exec_argv(self, name: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(name), *argv]

    def close(self) -> None:
        errors = []
        while self.undo:
            step = self.undo.pop()
            try:
                step()
            except Exception as exc:  # keep removing the rest
                errors.append(exc)
        if errors:
            raise RuntimeError(f"lab clean-up: {errors}")

    def remaining(self) -> dict[str, list[str]]:
        """What of this lab is still there (for the test's final check)."""
        left = leftovers(owned_by_dead_only=False)
        mine = re.compile(rf"\b{self.tag}(\D|$)")
        return {k: [x for x in v if mine.search(x)] for k, v in left.items()}
