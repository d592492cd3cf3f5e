"""Small real inputs for hub tests: native source packages made with dpkg-source, .debs made with dpkg-deb,
and a builder that talks to the hub's REST API like the real one but "builds" with dpkg-deb."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from deb_mock.request import BuildRequest, BuildResult, ResultFile
from deb_orchestrator.client import HubClient
from deb_orchestrator.wire import BuildClaim, CompleteOut, NoopClaim
from debarchive.dsc import parse_dsc

CHANGELOG = """{name} ({version}) unstable; urgency=medium

  * Test package.

 -- Test <test@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
"""


def make_source(root: Path, name: str, version: str, *, arch: str = "all", build_depends: str = "",
                binaries: list[str] | None = None, rules_extra: str = "") -> Path:
    """A native 3.0 source package; returns the .dsc path."""
    binaries = binaries or [name]
    tree = root / f"{name}-{version}"
    (tree / "debian" / "source").mkdir(parents=True, exist_ok=True)
    bd = f"\nBuild-Depends: {build_depends}" if build_depends else ""
    control = f"Source: {name}\nSection: misc\nPriority: optional\nMaintainer: Test <test@example.org>{bd}\n" \
              "Standards-Version: 4.6.2\nRules-Requires-Root: no\n"
    for b in binaries:
        control += f"\nPackage: {b}\nArchitecture: {arch}\nDescription: test package {b}\n test\n"
    (tree / "debian" / "control").write_text(control)
    (tree / "debian" / "changelog").write_text(CHANGELOG.format(name=name, version=version))
    (tree / "debian" / "source" / "format").write_text("3.0 (native)\n")
    rules = tree / "debian" / "rules"
    rules.write_text("#!/usr/bin/make -f\n%:\n\tdh $@\n" + rules_extra)
    rules.chmod(0o755)
    subprocess.run(["dpkg-source", "-b", tree.name], cwd=root, check=True, capture_output=True)
    return root / f"{name}_{version}.dsc"


def make_deb(root: Path, name: str, version: str, arch: str = "all", source: str | None = None,
             depends: str = "", provides: str = "") -> Path:
    tree = root / f"deb-{name}-{version}-{arch}"
    (tree / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (tree / "usr" / "share" / "doc" / name).mkdir(parents=True, exist_ok=True)
    (tree / "usr" / "share" / "doc" / name / "README").write_text(f"{name} {version}\n")
    control = textwrap.dedent(f"""\
        Package: {name}
        Version: {version}
        Architecture: {arch}
        Maintainer: Test <test@example.org>
        Description: test package {name}
        """)
    if source and source != name:
        control += f"Source: {source}\n"
    if depends:
        control += f"Depends: {depends}\n"
    if provides:
        control += f"Provides: {provides}\n"
    (tree / "DEBIAN" / "control").write_text(control)
    out = root / f"{name}_{version}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(out)], check=True,
                   capture_output=True)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FakeBuilder:
    """Speaks the builder protocol over real HTTP; its "build" is dpkg-deb (no chroot), so hub logic is
    tested fast. Each call to :meth:`step` claims one task and answers with ``exit_code``."""

    def __init__(self, client: HubClient, workdir: Path, arches: list[str] | None = None) -> None:
        self.client = client
        self.workdir = workdir
        self.arches = arches or ["amd64"]
        workdir.mkdir(parents=True, exist_ok=True)

    def claim(self, wait: float = 5.0) -> BuildClaim | NoopClaim | None:
        return self.client.claim(self.arches, wait=wait)

    def finish(self, payload: BuildClaim | NoopClaim, exit_code: int = 0, *,
               missing: list[dict[str, Any]] | None = None, provides: str = "",
               error: str | None = None) -> CompleteOut:
        tid, fence = payload["task_id"], payload["fence"]
        out = self.workdir / f"t{tid}-{fence}"
        out.mkdir(parents=True, exist_ok=True)
        files = []
        if exit_code == 0:
            arch = "all" if payload["build_what"] == "binary" else payload["arch"]
            deb = make_deb(out, payload["source"], payload["version"], arch, provides=provides)
            files.append({"name": deb.name, "sha256": sha256(deb), "size": deb.stat().st_size})
            self.client.upload(tid, fence, deb)
        log = out / "build.log"
        log.write_text(f"fake build of {payload['build']} exit {exit_code}\n")
        self.client.upload(tid, fence, log)
        result = {"state": {0: "success", 1: "failed", 3: "dep-wait"}.get(exit_code, "error"),
                  "exit_code": exit_code, "source": {"name": payload["source"], "version": payload["version"]},
                  "arch": payload["arch"], "files": files, "missing": missing or [],
                  "buildroot": [{"package": "dpkg", "version": "1.22", "arch": "amd64"}], "phases": {},
                  "logs": {"build": "build.log"}}
        if error or exit_code:
            result["error"] = error or f"exit {exit_code}"
        (out / "result.json").write_text(json.dumps(result))
        return self.client.complete(tid, fence, result)

    def step(self, exit_code: int = 0, **kwargs: Any) -> CompleteOut:
        payload = self.claim()
        assert payload is not None, "no task to claim"
        return self.finish(payload, exit_code, **kwargs)


def tar_bytes(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar archive of regular files (name -> content)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def ar_archive(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """Write an ar archive (the container of a .deb) by hand, so tests can make packages dpkg-deb refuses."""
    with path.open("wb") as f:
        f.write(b"!<arch>\n")
        for name, data in members:
            f.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode())
            f.write(data)
            if len(data) & 1:
                f.write(b"\n")
    return path


def craft_deb(path: Path, control: str | bytes, data: bytes | None = None, *,
              control_member: bytes | None = None) -> Path:
    """A .deb whose control file is ``control`` verbatim (any bytes) and whose data.tar.gz is ``data``
    (default: an empty tar); ``control_member`` replaces the whole control.tar.gz member."""
    import gzip

    raw = control.encode() if isinstance(control, str) else control
    ctl = control_member if control_member is not None else gzip.compress(tar_bytes({"./control": raw}))
    body = gzip.compress(data if data is not None else tar_bytes({}))
    return ar_archive(path, [("debian-binary", b"2.0\n"), ("control.tar.gz", ctl), ("data.tar.gz", body)])


def deb_control(package: str, version: str, arch: str = "all", source: str | None = None, extra: str = "") -> str:
    src = f"Source: {source}\n" if source else ""
    return (f"Package: {package}\n{src}Version: {version}\nArchitecture: {arch}\nMaintainer: T <t@example.org>\n"
            f"{extra}Description: crafted\n test\n")


def put_file(client: HubClient, payload: BuildClaim | NoopClaim, path: Path, name: str | None = None) -> Any:
    """Upload ``path`` for a claimed task over real HTTP; returns the raw response (no raise on 4xx)."""
    import httpx

    return httpx.put(f"{client.url}/api/v1/tasks/{payload['task_id']}/files/{name or path.name}",
                     params={"fence": payload["fence"], "sha256": sha256(path)}, content=path.read_bytes(),
                     headers={"Authorization": f"Bearer {client.token}"}, timeout=120)


PLUGINS_DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def install_example_hub_plugin(site: Path) -> Path:
    """docs/plugins.md's example hub plugin (``journal``) installed as a distribution in ``site`` (its module and a
    .dist-info with the ``deb_orchestrator.plugins`` entry point); put ``site`` on sys.path or PYTHONPATH."""
    code = re.search(r"<!-- orchestrator-example-plugin -->\n```python\n(.*?)```", PLUGINS_DOC.read_text(), re.S)
    assert code, "docs/plugins.md has lost its example hub plugin"
    info = site / "orch_journal-1.0.dist-info"
    info.mkdir(parents=True)
    (site / "orch_journal.py").write_text(code.group(1))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: orch-journal\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[deb_orchestrator.plugins]\njournal = orch_journal:Journal\n")
    return site


def built(request: BuildRequest, *, log: bool = True, plugins: dict[str, Any] | None = None) -> BuildResult:
    """What a successful deb-mock build leaves for ``request`` (its source's .deb made with dpkg-deb, a build log
    unless ``log`` is false, result.json): deb-mock's place in builder tests that need no real build."""
    pkg = parse_dsc(Path(request.source))
    deb = make_deb(request.resultdir, pkg.source, pkg.version)
    if log:
        (request.resultdir / "build.log").write_text(f"built {deb.name}\n")
    result = BuildResult(state="success", exit_code=0, source={"name": pkg.source, "version": pkg.version},
                         arch=request.arch, files=[ResultFile(deb.name, sha256(deb), deb.stat().st_size)],
                         logs={"build": "build.log"} if log else {}, plugins=plugins or {})
    result.write(request.resultdir)
    return result
