"""The hub opens every uploaded .deb before storing it: crafted bad packages (path traversal in the ar
archive, control.tar or data.tar; control fields that do not belong to the build or do not match the file
name; not a .deb at all) are refused with a 400 naming the file and the member, and nothing is recorded."""

from __future__ import annotations

import io
import lzma
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from orch_helpers import FakeBuilder, make_deb, make_source, sha256
from orch_hub import RunningHub

from deb_orchestrator.client import HubClient, HubError
from deb_orchestrator.wire import BuildClaim, NoopClaim

MIRROR = "http://deb.debian.org/debian"
HUB_SETTINGS = {"lease_seconds": 120.0}  # the module's hub: the claim must outlive a slow run
CONTROL = "Package: orch-deb\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.org>\nDescription: x\n x\n"


def ar(members: list[tuple[str, bytes]]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    return out


def tar(entries: list[tuple[str, bytes | None, str]], compress: str = "gz") -> bytes:
    """(name, content, hard link target) entries; content None and a target make a hard link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, content, link in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.linkname = tarfile.LNKTYPE, link
                t.addfile(info)
            else:
                info.size = len(content)
                t.addfile(info, io.BytesIO(content))
    raw = buf.getvalue()
    if compress == "gz":
        import gzip

        return gzip.compress(raw)
    return lzma.compress(raw)


def deb(control: str = CONTROL, control_names: tuple[str, ...] = ("./control",),
        data: list[tuple[str, bytes | None, str]] | None = None, ar_names: tuple[str, ...] | None = None) -> bytes:
    control_tar = tar([(n, control.encode(), "") for n in control_names])
    data_tar = tar(data if data is not None else [("./usr/share/doc/orch-deb/README", b"hi\n", "")], "xz")
    names = ar_names or ("debian-binary", "control.tar.gz", "data.tar.xz")
    return ar(list(zip(names, [b"2.0\n", control_tar, data_tar], strict=True)))


@pytest.fixture
def claimed(hub: RunningHub, tmp_path: Path) -> Iterator[tuple[RunningHub, HubClient, BuildClaim | NoopClaim]]:
    admin = hub.admin
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_target("t", "base", "base")
    admin.submit("t", make_source(tmp_path, "orch-deb", "1.0", binaries=["orch-deb", "orch-deb-extra"]))
    builder = hub.client(admin.add_host("b1", ["amd64"])["token"])
    payload = builder.claim(["amd64"], wait=5)
    assert payload is not None
    yield hub, builder, payload


def refused(builder: HubClient, payload: BuildClaim | NoopClaim, tmp_path: Path, content: bytes,
            name: str = "orch-deb_1.0_all.deb") -> str:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    with pytest.raises(HubError) as err:
        builder.upload(int(str(payload["task_id"])), int(str(payload["fence"])), path, name)
    assert err.value.status == 400, err.value
    assert err.value.detail.startswith(f"{name}: ") and "refused" in err.value.detail
    return err.value.detail


def test_crafted_debs_refused(claimed: tuple[RunningHub, HubClient, BuildClaim | NoopClaim], tmp_path: Path) -> None:
    hub, builder, payload = claimed
    # path traversal in the ar archive, control.tar, data.tar (absolute, '..', hard link out)
    detail = refused(builder, payload, tmp_path, deb(ar_names=("debian-binary", "../../evil/", "data.tar.xz")))
    assert "ar member '../../evil/'" in detail and "path traversal" in detail
    detail = refused(builder, payload, tmp_path, deb(control_names=("./control", "../../etc/cron.d/x")))
    assert "control.tar.gz holds '../../etc/cron.d/x'" in detail
    detail = refused(builder, payload, tmp_path, deb(data=[("/etc/evil", b"x", "")]))
    assert "data.tar.xz holds '/etc/evil'" in detail
    detail = refused(builder, payload, tmp_path, deb(data=[("./usr/../../../x", b"x", "")]))
    assert "data.tar.xz holds './usr/../../../x'" in detail
    detail = refused(builder, payload, tmp_path, deb(data=[("./shadow", None, "../../etc/shadow")]))
    assert "hard link './shadow' to '../../etc/shadow'" in detail
    # control fields that do not belong to this build or this file name
    for control, expect in [
        (CONTROL.replace("orch-deb\n", "orch-other\n", 1) + "Source: orch-deb\n",
         "package orch-other is not one the source builds (orch-deb, orch-deb-extra)"),
        (CONTROL + "Source: hello\n", "says Source hello, but this build is of orch-deb"),
        (CONTROL.replace("Version: 1.0", "Version: 2.0"), "source version 2.0, but this build is orch-deb 1.0"),
        (CONTROL.replace("Architecture: all", "Architecture: arm64"), "Architecture arm64, but this task builds"),
        (CONTROL.replace("Version: 1.0\n", ""), "the control file has no Version field"),
    ]:
        assert expect in refused(builder, payload, tmp_path, deb(control=control)), expect
    # the declared file name must be the one the control file gives
    detail = refused(builder, payload, tmp_path, deb(), name="orch-deb-extra_1.0_all.deb")
    assert "names this file orch-deb_1.0_all.deb" in detail
    # not a .deb, a truncated one, a control.tar without control
    assert "no ar archive signature" in refused(builder, payload, tmp_path, b"just text\n")
    assert "truncated" in refused(builder, payload, tmp_path, deb()[:-100])
    assert "holds no control file" in refused(builder, payload, tmp_path, deb(control_names=("./md5sums",)))
    # nothing was recorded, nothing of it is in the store
    assert hub.admin.task(int(str(payload["task_id"])))["files"] == []
    # a wrong checksum is still reported as such
    good = tmp_path / "orch-deb_1.0_all.deb"
    good.write_bytes(deb())
    with pytest.raises(HubError) as err:
        builder.request("PUT", f"/tasks/{payload['task_id']}/files/{good.name}",
                        params={"fence": payload["fence"], "sha256": "0" * 64}, content=good.read_bytes())
    assert err.value.status == 400 and "declared sha256" in err.value.detail


def test_real_debs_accepted(claimed: tuple[RunningHub, HubClient, BuildClaim | NoopClaim], tmp_path: Path) -> None:
    """dpkg-deb's packages (and the crafted good one) pass; the build completes with them."""
    hub, builder, payload = claimed
    tid, fence = int(str(payload["task_id"])), int(str(payload["fence"]))
    crafted = tmp_path / "orch-deb-extra_1.0_all.deb"
    crafted.write_bytes(deb(control=CONTROL.replace("orch-deb\n", "orch-deb-extra\n", 1) + "Source: orch-deb\n"))
    builder.upload(tid, fence, crafted)
    real = make_deb(tmp_path, "orch-deb", "1.0", "all")
    assert builder.upload(tid, fence, real)["sha256"] == sha256(real)
    fb = FakeBuilder(builder, tmp_path / "fb")
    out = fb.finish(payload)  # uploads its own orch-deb_1.0_all.deb (same content) and completes
    assert out["build_state"] == "complete"
    names = {p["name"] for p in hub.admin.build("orch-deb_1.0")["packages"]}
    assert names == {"orch-deb", "orch-deb-extra"}
