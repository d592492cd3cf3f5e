#!/usr/bin/env python3
"""deb-orchestrator scheduler and repository benchmark, against a real hub process.

1. Dispatch latency: idle simulated builders long-poll; one no-op task is queued at a time; latency is
   the time from the queueing request to the builder holding the claim (p50/p95). Koji: builders poll
   every 15 s and the scheduler runs at most every 60 s (up to ~75 s on an idle system).
2. Throughput: 50 simulated builders claim, heartbeat and complete no-op leaf tasks; completed
   claim→heartbeat→complete cycles per second (median of 3 runs). The builders live in one asyncio
   process (uvloop when installed) and speak HTTP/1.1 with keep-alive over plain asyncio streams, so
   they cost the machine little; each task is still a claim, a heartbeat and a completion, like a real
   builder's (``--protocol combined``, the default, completes and claims the next task in one request
   as the builder daemon does; ``--protocol separate`` makes three requests per task).
3. Repository: time from tag-build to a signed, published repo when the tag holds 1,000 packages
   (real .deb files, stanzas kept in the database), and the first full publication.

Both SQLite and PostgreSQL (``--postgres URL`` or DEB_TEST_POSTGRES_URL; a scratch database is
created and dropped). ``--quick`` makes the runs short (CI). Targets: p95 < 1 s; >= 100 tasks/s on
PostgreSQL; repo < 5 s. Exit status 1 when a target is missed and ``--check`` is given. The hub runs
with ``--workers`` (default: the hub's own default, i.e. the CPU count on PostgreSQL, 1 on SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import io
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

API = "/api/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def scratch_postgres(url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"orch_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{url.rpartition('/')[0]}/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def hub_process(data: Path, db: str | None, workers: int | None = None) -> Iterator[tuple[str, str]]:
    port = free_port()
    argv = [sys.executable, "-m", "deb_orchestrator.cli", "hub", "--data", str(data), "--listen",
            f"127.0.0.1:{port}", "--log-level", "warning"]
    if db:
        argv += ["--db", db]
    if workers is not None:
        argv += ["--workers", str(workers)]
    log = (data.parent / f"hub-{port}.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}{API}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hub did not start: {(data.parent / f'hub-{port}.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url, (data / "admin.token").read_text().strip()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


async def add_hosts(client: httpx.AsyncClient, n: int, prefix: str) -> list[str]:
    tokens = []
    for i in range(n):
        r = await client.post(f"{API}/hosts", json={"name": f"{prefix}{i}", "arches": ["amd64"], "capacity": 1})
        r.raise_for_status()
        tokens.append(r.json()["token"])
    return tokens


async def dispatch_latency(url: str, admin: str, samples: int, idle_builders: int) -> list[float]:
    claimed: asyncio.Queue[float] = asyncio.Queue()
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=60) as c:
        tokens = await add_hosts(c, idle_builders, "idle")

        async def builder(token: str) -> None:
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                         timeout=60) as b:
                while not stop.is_set():
                    r = await b.post(f"{API}/tasks/claim", json={"arches": ["amd64"], "wait": 2})
                    if r.status_code == 204:
                        continue
                    r.raise_for_status()
                    await claimed.put(time.perf_counter())
                    task = r.json()
                    await b.post(f"{API}/tasks/{task['task_id']}/complete",
                                 json={"fence": task["fence"], "result": {"exit_code": 0}})

        workers = [asyncio.create_task(builder(t)) for t in tokens]
        await asyncio.sleep(1.0)  # everyone is inside a long-poll
        latencies = []
        for _ in range(samples):
            t0 = time.perf_counter()
            (await c.post(f"{API}/tasks/noop", json={"count": 1})).raise_for_status()
            t1 = await asyncio.wait_for(claimed.get(), 30)
            latencies.append(t1 - t0)
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*workers)
    return latencies


class HttpConnection:
    """One HTTP/1.1 keep-alive connection over asyncio streams: a simulated builder's whole client.

    Enough HTTP for the hub's JSON answers (Content-Length bodies); cheap, so the builders leave the
    machine's cores to the hub and the database."""

    def __init__(self, url: str, token: str) -> None:
        hostport = url.removeprefix("http://")
        self.host, _, port = hostport.partition(":")
        self.port = int(port or 80)
        self.head = f"Host: {hostport}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: object) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = orjson.dumps(body)
        self.writer.write(f"POST {API}{path} HTTP/1.1\r\n{self.head}Content-Length: {len(data)}\r\n\r\n".encode()
                          + data)
        status = int((await self.reader.readline()).split(b" ", 2)[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"transfer-encoding":
                raise RuntimeError(f"POST {path}: chunked answers are not expected from the hub")
        content = await self.reader.readexactly(length) if length else b""
        if status >= 400:
            raise RuntimeError(f"POST {path}: {status} {content[:300]!r}")
        return status, (orjson.loads(content) if content else None)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass


async def throughput(url: str, admin: str, builders: int, tasks: int, *, protocol: str = "combined",
                     prefix: str = "sim") -> tuple[float, int]:
    """Queue ``tasks`` no-op tasks, let ``builders`` simulated builders work them off; tasks/s."""
    done = 0
    last = 0.0
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=120) as c:
        tokens = await add_hosts(c, builders, prefix)
        remaining = tasks
        while remaining:
            n = min(remaining, 5000)
            (await c.post(f"{API}/tasks/noop", json={"count": n})).raise_for_status()
            remaining -= n
    claim = {"arches": ["amd64"], "wait": 0.5}

    async def builder(token: str) -> None:
        nonlocal done, last
        conn = HttpConnection(url, token)
        try:
            status, task = await conn.post("/tasks/claim", claim)
            while status != 204 and isinstance(task, dict):
                tid, fence = task["task_id"], task["fence"]
                await conn.post(f"/tasks/{tid}/heartbeat", {"fence": fence})
                result = {"fence": fence, "result": {"state": "success", "exit_code": 0}}
                if protocol == "combined":
                    _, answer = await conn.post(f"/tasks/{tid}/complete-and-claim", {**result, "next": claim})
                    assert answer["completed"]["state"] == "closed", answer
                    status, task = 200, answer["next"]
                else:
                    await conn.post(f"/tasks/{tid}/complete", result)
                    status, task = await conn.post("/tasks/claim", claim)
                done += 1
                last = time.perf_counter()
        finally:
            await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(builder(t) for t in tokens))
    return done / (last - start), done


def run_async(coro: Any) -> Any:
    """uvloop when it is installed (the hub uses it too), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# ---------------------------------------------------------------------------------------------- repos
def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, data in members:
        out.write(f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode())
        out.write(data)
        if len(data) % 2:
            out.write(b"\n")
    return out.getvalue()


def _targz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def make_deb(name: str, version: str) -> tuple[bytes, str]:
    control = (f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Bench <bench@example.org>\n"
               f"Installed-Size: 1\nSection: misc\nPriority: optional\nDescription: benchmark package {name}\n")
    data = _ar([("debian-binary", b"2.0\n"), ("control.tar.gz", _targz({"./control": control.encode()})),
                ("data.tar.gz", _targz({f"./usr/share/doc/{name}/README": name.encode()}))])
    return data, control


def seed_packages(data_dir: Path, db: str | None, count: int) -> None:
    """Put ``count`` complete builds (one real .deb each) in the hub's DB and store; tag all but the last."""
    from deb_orchestrator.hub.config import HubSettings
    from deb_orchestrator.hub.models import Artifact, BinaryPackage, Build, Repo, Tag, TagListing
    from deb_orchestrator.hub.service import Hub

    hub = Hub(HubSettings(data=data_dir, db_url=db))
    with tempfile.TemporaryDirectory() as tmp, hub.db.session() as s:
        tag = Tag(name="big", arches="amd64")
        s.add(tag)
        s.flush()
        s.add(Repo(tag_id=tag.id, dirty=True))
        for i in range(count):
            name = f"bench-pkg{i:04d}"
            deb, control = make_deb(name, "1.0")
            path = Path(tmp) / f"{name}_1.0_all.deb"
            path.write_bytes(deb)
            sha, size = hub.store.put_file(path)
            filename = f"pool/main/b/{name}/{path.name}"
            stanza = (control.replace("Description:", f"Filename: {filename}\nSize: {size}\n"
                                      f"MD5sum: {hashlib.md5(deb).hexdigest()}\nSHA256: {sha}\nDescription:"))
            b = Build(ident=f"{name}_1.0", source=name, version="1.0", state="complete", owner="bench")
            s.add(b)
            s.flush()
            s.add(Artifact(build_id=b.id, name=path.name, kind="deb", sha256=sha, size=size))
            s.add(BinaryPackage(build_id=b.id, name=name, version="1.0", arch="all", filename=filename, sha256=sha,
                                size=size, stanza=stanza))
            if i < count - 1:
                s.add(TagListing(tag_id=tag.id, build_id=b.id, by="bench"))
    hub.db.dispose()


def repo_publish(data_dir: Path, db: str | None, count: int) -> tuple[float, float]:
    seed_packages(data_dir, db, count)
    with hub_process(data_dir, db) as (url, admin), httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=120) as c:
        t0 = time.perf_counter()
        while True:  # the first publication of the 999 (or count-1) packages, started by the hub itself
            info = c.get(f"{API}/repos/big/wait", params={"timeout": 60}).json()
            if info["done"]:
                break
        first = time.perf_counter() - t0
        gen = info["generation"]
        last = f"bench-pkg{count - 1:04d}_1.0"
        t0 = time.perf_counter()
        c.post(f"{API}/tags/big/builds", json={"build": last}).raise_for_status()
        info = c.get(f"{API}/repos/big/wait", params={"build": last, "after": gen, "timeout": 60}).json()
        incremental = time.perf_counter() - t0
        assert info["done"], info
        packages = c.get("/repos/big/dists/big/main/binary-amd64/Packages").text
        assert packages.count("Package: ") == count, "the repo does not list every package"
        inrelease = c.get("/repos/big/dists/big/InRelease").text
        key = c.get("/repos/big/key.asc").text
        verify_signature(inrelease, key)
    return first, incremental


def verify_signature(inrelease: str, key: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        keyring = Path(tmp) / "key.gpg"
        subprocess.run(["gpg", "--batch", "--dearmor", "-o", str(keyring)], input=key.encode(), check=True)
        subprocess.run(["gpgv", "--keyring", str(keyring)], input=inrelease.encode(), check=True,
                       capture_output=True)


def run_db(label: str, db: str | None, args: argparse.Namespace, root: Path) -> dict[str, float]:
    data = root / label / "data"
    data.parent.mkdir(parents=True)
    workers = args.workers if db else None
    with hub_process(data, db, workers) as (url, admin):
        health = httpx.get(f"{url}{API}/health").json()
        lat = run_async(dispatch_latency(url, admin, args.samples, args.idle_builders))
        runs = [run_async(throughput(url, admin, args.builders, args.tasks, protocol=args.protocol,
                                     prefix=f"sim{i}-")) for i in range(args.repeat)]
    p50, p95 = statistics.median(lat), pct(lat, 95)
    tps = statistics.median(r[0] for r in runs)
    print(f"[{label}] dispatch latency over {len(lat)} tasks, {args.idle_builders} idle builders: "
          f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms", flush=True)
    print(f"[{label}] throughput, {args.builders} builders, {runs[0][1]} claim→heartbeat→complete cycles per run, "
          f"hub workers {health.get('workers', 1)}, protocol {args.protocol}: {tps:.1f} tasks/s "
          f"(median of {len(runs)}: {', '.join(f'{r[0]:.1f}' for r in runs)})", flush=True)
    incr = 0.0
    if not args.skip_repo:
        repo_root = root / label / "repo" / "data"
        repo_root.parent.mkdir(parents=True)
        if db:
            with scratch_postgres(args.postgres) as db_repo:
                first, incr = repo_publish(repo_root, db_repo, args.packages)
        else:
            first, incr = repo_publish(repo_root, None, args.packages)
        print(f"[{label}] repo with {args.packages} packages: first publication {first:.2f} s; "
              f"tag-build → signed repo holding it {incr:.2f} s", flush=True)
    return {"p50": p50, "p95": p95, "tps": tps, "repo": incr}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short runs (CI)")
    p.add_argument("--postgres", default=os.environ.get("DEB_TEST_POSTGRES_URL"),
                   help="PostgreSQL server URL (a scratch database is made); default DEB_TEST_POSTGRES_URL")
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--workers", type=int, help="hub worker processes on PostgreSQL (default: the hub's default)")
    p.add_argument("--protocol", choices=("combined", "separate"), default="combined",
                   help="builders complete and claim in one request (default) or in two")
    p.add_argument("--repeat", type=int, default=3, help="throughput runs; the median is reported (default 3)")
    p.add_argument("--tasks", type=int, help="tasks per throughput run (default 3000, --quick 600)")
    p.add_argument("--skip-repo", action="store_true", help="leave out the repository benchmark")
    args = p.parse_args(argv)
    args.samples = 20 if args.quick else 100
    args.idle_builders = 5 if args.quick else 10
    args.builders = 50
    args.tasks = args.tasks or (600 if args.quick else 3000)
    args.packages = 1000
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        root = Path(tmp)
        if not args.no_sqlite:
            results["sqlite"] = run_db("sqlite", None, args, root)
        if args.postgres:
            with scratch_postgres(args.postgres) as db:
                results["postgresql"] = run_db("postgresql", db, args, root)
    ok = True
    for label, r in results.items():
        misses = []
        if r["p95"] >= 1.0:
            misses.append(f"p95 {r['p95']:.3f} s >= 1 s")
        if label == "postgresql" and r["tps"] < 100:
            misses.append(f"{r['tps']:.0f} tasks/s < 100")
        if r["repo"] >= 5.0:
            misses.append(f"repo {r['repo']:.2f} s >= 5 s")
        print(f"[{label}] targets: {'met' if not misses else 'MISSED: ' + '; '.join(misses)}")
        ok = ok and not misses
    koji = 75.0
    for label, r in results.items():
        print(f"[{label}] ratio Koji worst-case idle dispatch (~{koji:.0f} s) / our p95: {koji / r['p95']:.0f}x")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
