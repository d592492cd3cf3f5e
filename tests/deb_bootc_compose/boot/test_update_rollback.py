"""The real update path and the registry path, one VM session: two REAL composes of a manifest with an
``update`` section (``ostree`` and ``registry``), v1 published with ``deb-bootc-compose publish`` into a directory
that Debian's nginx serves on the host; v1 boots with ``boot-test --net`` and follows
``http://10.0.2.2:PORT/debian-atomic`` with the image's own signed remote.

In the guest, with the ``deb-bootc`` client the images carry: ``status`` (v1, its signed remote), ``upgrade``
refused (exit 3, nothing staged) while the server offers a newer commit signed by another key, then an unsigned
one; v2 published; ``upgrade --check`` reports v2 and its package changes, ``upgrade`` stages it, power-off, boot
v2 (packages, ``/etc`` merge, ``/var`` kept, a user made on v1 logs in), ``rollback``, reboot into v1.

Then the registry (Debian's docker-registry over TLS with a test CA, on loopback, known as ``registry.test:RPORT``
on both sides): v1's OCI image pushed unsigned as ``…/debian-bootc/base:unsigned``, then v2's pushed with
``push --sign-key`` (a ``keygen`` sigstore key) to the manifest's own ``update.registry.name`` (``:13.1`` and
``:latest``). In the guest, on v1: ``deb-bootc switch docker://…:unsigned`` is refused by the image's own
``/etc/containers/policy.json`` (exit 3, nothing staged, no blob fetched), ``switch docker://…:13.1`` pulls
through trixie's skopeo under that policy, applies the layers and commits them (the imported commit has
exactly v2's content: ``ostree diff`` empty, same ContentChecksum), reboot into it: v2's packages, the image
origin and ``policy`` signature state in ``status``, ``/etc`` and ``/var`` kept, ``upgrade --check`` and
``upgrade`` exit 77 (the registry still has that digest).

Why this shape:

* One session for both paths (the issue's CI budget): the registry part starts where the rollback left the
  machine (v1 booted, v2 deployed), so it costs no boot of v1 of its own, only its reboot; v2's OSTree
  commit is then in the machine's repository, which gives the strongest content check (the imported commit
  against the compose's own, in the guest).
* The composes are the update test's (``update_v1``, ``update_v2``), with ``update.registry`` added: the images
  carry skopeo and the policy; v1 has ``disk.free_space: 1536MiB`` (the switch keeps the layers and unpacks one
  tree under ``/var``).
* The unsigned image is v1's, not v2's under another tag: sigstore signatures are attached per manifest digest
  (``REPO:sha256-<hex>.sig``), so v2 under any tag of the repository would carry v2's signature. It is pushed
  first, so that ``latest`` ends on the signed v2.
* ``registry.test`` on both sides (tests/deb_bootc_compose/boot/registryvm.py): a sigstore signature names the
  repository it was pushed as, and the policy accepts it for that repository only.

v1 = ``update_v1`` (hello 2.10-3 from a local signed repo, no openssh-server, qcow2 built by the compose);
v2 = ``update_v2`` (trixie's hello 2.10-5, openssh-server ADDED), composed in v1's target.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from compose_helpers import SessionCompose, run_cli
from registryvm import Registry, image_layers, private_hosts, push, serve_registry, trust_registry
from updatesource import PUBLISHED_PATH, REGISTRY_NAME, OpenPGPKey, UpdateSource, make_openpgp_key, stop_gpg_agent

from deb_bootc_compose.boot import cli as boot_cli
from deb_bootc_compose.boot.checks import BootReport, booted_deployment
from deb_bootc_compose.boot.runner import packages_from_metadata
from deb_bootc_compose.boot.vm import VirtualMachine
from deb_bootc_compose.disk import source
from debarchive.digest import sha256_file
from nginxserve import nginx

# two composes (~5 min each), four TCG boots (1-7 min each, by the machine's load), an update over HTTP and an
# image pulled from a registry and imported under TCG
pytestmark = [pytest.mark.boot, pytest.mark.timeout(5400)]
BOOT_TIMEOUT = 1500
PASSWORD = "Secret-123"
REMOTE = "debian-bootc"  # the manifest's name: the stateroot, and the update remote the image carries
REFUSED = 3  # deb-bootc's exit codes (docs/client.md)
NO_UPDATE = 77
REGISTRY_KEY = "/usr/share/deb-bootc/keys/registry.pub"  # where the registry-policy prepare step installs it


def ostree(repo: Path, *args: str) -> str:
    done = subprocess.run(["ostree", f"--repo={repo}", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"ostree {args}: {done.stderr}"
    return done.stdout.strip()


def publish(compose: Path, dest: Path, key: OpenPGPKey) -> str:
    run = run_cli(["publish", str(compose), "--to", str(dest), "--gpg-key", str(key.secret)], timeout=1800)
    assert run.returncode == 0, f"publish {compose}: {run.stdout}{run.stderr}"
    return run.stdout


def forged_repo(dest: Path, target_repo: Path, base: str, ref: str, signer: OpenPGPKey | None,
                publisher: OpenPGPKey, age: int) -> str:
    """A repository whose ref is a NEWER commit of ``base``'s tree signed by ``signer`` (or not at all) while the
    summary is signed by the publisher: the commit's own signature is what the client must refuse. Its summary
    files are dated ``age`` seconds back: two forged summaries of the same size written in the same second
    would look "not modified" to a client that cached the other (nginx's ETag is mtime and size)."""
    ostree(dest, "init", "--mode=archive")
    ostree(dest, "pull-local", str(target_repo), base)  # hard links
    commit = ostree(dest, "commit", f"--branch={ref}", f"--tree=ref={base}", "--parent=none", "--no-bindings",
                    f"--subject=not the publisher's ({'other key' if signer else 'unsigned'})",
                    "--add-metadata-string=version=13.99")
    if signer is not None:
        ostree(dest, "gpg-sign", f"--gpg-homedir={signer.home}", commit, signer.fingerprint)
    ostree(dest, "summary", "-u", f"--gpg-homedir={publisher.home}", f"--gpg-sign={publisher.fingerprint}")
    when = time.time() - age
    for name in ("summary", "summary.sig"):
        os.utime(dest / name, (when, when))
    return commit


def serve(www: Path, name: str) -> None:
    """Point the served ``debian-atomic`` at ``www/name`` (an atomic symlink swap; nginx follows it)."""
    tmp = www / f".{PUBLISHED_PATH}.new"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(name)
    os.replace(tmp, www / PUBLISHED_PATH)


def version(vm: VirtualMachine, package: str) -> str:
    return vm.check(f"dpkg-query -W -f '${{Version}}' {package}").strip()


def client_json(vm: VirtualMachine, args: str, rc: int = 0) -> dict[str, object]:
    res = vm.shell(f"deb-bootc {args} --json 2>/dev/null", timeout=900)
    assert res.returncode == rc, (args, res.returncode, res.output)
    data = json.loads(res.output)
    assert isinstance(data, dict)
    return data


def roles(vm: VirtualMachine) -> list[tuple[str, str]]:
    deps = client_json(vm, "status")["deployments"]
    assert isinstance(deps, list)
    return [(d["role"], d["checksum"]) for d in deps]


def content_checksum(vm: VirtualMachine, commit: str) -> str:
    """The commit's ContentChecksum (of its whole tree: files, owners, modes, xattrs), from ``ostree show``."""
    out = vm.shell(f"ostree show {commit}").output  # it may also complain about the commit's signature
    found = [line.split()[-1] for line in out.splitlines() if line.startswith("ContentChecksum:")]
    assert len(found) == 1, out
    return found[0]


def free_mib(vm: VirtualMachine) -> int:
    return int(vm.check("df --output=avail -m /var | tail -n 1").strip())


def switch_to_registry(vm: VirtualMachine, registry: Registry, repo: str, v1: str, v2: str, v2_layers: set[str],
                       v2_pkgs: dict[str, str], steps: dict[str, float], figures: dict[str, int]) -> str:
    """In the guest, booted on v1 with v2 deployed: the unsigned image refused, the signed one (v2's image)
    switched to, reboot into it; returns the imported commit. The registry's log says which blobs the guest
    fetched."""
    began = time.monotonic()
    trust_registry(vm, repo.split("/", 1)[0], registry.cert_dir / "ca.crt")
    policy = json.loads(vm.check("cat /etc/containers/policy.json"))  # the image's own, from update.registry
    assert policy["transports"]["docker"][repo] == [
        {"type": "sigstoreSigned", "keyPath": REGISTRY_KEY, "signedIdentity": {"type": "matchRepository"}}], policy
    before = roles(vm)
    assert before == [("booted", v1), ("rollback", v2)], before
    # --- unsigned: refused by the policy before anything is fetched ---
    offset = registry.log_offset()
    res = vm.shell(f"deb-bootc switch docker://{repo}:unsigned", timeout=600)
    assert res.returncode == REFUSED, res.output
    assert "refused by /etc/containers/policy.json" in res.output, res.output
    assert "A signature was required, but no signature exists" in res.output, res.output
    assert roles(vm) == before
    assert vm.check("ostree refs deb-bootc/image").strip() == ""  # nothing imported
    assert vm.check("find /var/lib/deb-bootc/images -type f -path '*/blobs/*' 2>/dev/null | wc -l").strip() == "0"
    assert registry.blob_fetches_since(offset) == []  # not even its config
    # --- signed: pulled under the policy, layers applied, committed, staged ---
    figures["free MiB before"] = free_mib(vm)
    t = time.monotonic()
    offset = registry.log_offset()
    reference = f"docker://{repo}:13.1"
    res = vm.shell(f"deb-bootc switch {reference}", timeout=3600)
    assert res.returncode == 0, res.output[-3000:]
    steps["switch"] = time.monotonic() - t
    fetched = [d for d in registry.blob_fetches_since(offset) if d in v2_layers]
    assert sorted(fetched) == sorted(v2_layers), "each layer of the image fetched once"
    figures["free MiB after"] = free_mib(vm)
    figures["store MiB"] = int(vm.check("du -sm /var/lib/deb-bootc/images | cut -f1").strip())
    deps = client_json(vm, "status")["deployments"]
    assert isinstance(deps, list)
    staged = deps[0]
    imported = staged["checksum"]
    assert [(d["role"], d["checksum"]) for d in deps] == [("staged", imported), ("booted", v1), ("rollback", v2)]
    assert staged["origin"]["image"] == reference and staged["version"] == "13.1", staged
    assert staged["signature"]["state"] == "policy", staged
    # the imported commit has exactly the content of v2's OSTree commit (in this repository since the upgrade)
    assert imported != v2
    assert vm.check(f"ostree diff {v2} {imported}").strip() == ""
    assert content_checksum(vm, imported) == content_checksum(vm, v2)
    vm.poweroff(timeout=600)
    # --- the image's content booted ---
    steps["boot image"] = vm.boot(BOOT_TIMEOUT)
    status = vm.shell("ostree admin status").output
    assert booted_deployment(status) == (REMOTE, imported), status
    assert roles(vm)[:2] == [("booted", imported), ("rollback", v1)]
    text = vm.check("deb-bootc status")
    assert f"origin:    {reference}" in text and "signature: policy" in text, text
    assert version(vm, "hello") == "2.10-5" and vm.check("hello").strip() == "Hello, world!"
    assert version(vm, "openssh-server") == v2_pkgs["openssh-server"]
    vm.check("test -x /usr/sbin/sshd && test -f /etc/ssh/sshd_config")
    assert vm.check("cat /etc/deb-bootc-test.conf").strip() == "made on v1"  # /etc merged from v1's
    assert vm.check("id -un alice").strip() == "alice"
    vm.check("test -f /var/home/alice/on-v2")  # written on v2: /var is shared
    assert vm.check("systemctl is-system-running --wait", timeout=600).strip() == "running"
    # the machine now follows the image: the registry still has that digest
    t = time.monotonic()
    offset = registry.log_offset()
    check = vm.shell("deb-bootc upgrade --check", timeout=600)
    assert check.returncode == NO_UPDATE and "no update" in check.output, check.output
    again = vm.shell("deb-bootc upgrade", timeout=1200)  # copied again under the policy (no blob fetched)
    assert again.returncode == NO_UPDATE and "no update" in again.output, again.output
    assert roles(vm)[0] == ("booted", imported)
    assert not set(registry.blob_fetches_since(offset)) & v2_layers  # the layers came from the machine's store
    steps["image upgrade checks"] = time.monotonic() - t
    steps["registry part in all"] = time.monotonic() - began
    return imported


def package_changes(old: dict[str, str], new: dict[str, str]) -> tuple[set[str], set[str], set[str]]:
    return (set(new) - set(old), set(old) - set(new), {n for n in set(old) & set(new) if old[n] != new[n]})


def test_update_rollback_then_registry_switch(update_v1: SessionCompose, update_v2: SessionCompose,
                                              update_source: UpdateSource, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    v1_dir, v2_dir = update_v1.topdir, update_v2.topdir
    v1, v2 = source.from_compose(v1_dir), source.from_compose(v2_dir)
    assert v1.ref == v2.ref and v1.commit != v2.commit
    v1_pkgs = packages_from_metadata(v1_dir, "base", "amd64") or {}
    v2_pkgs = packages_from_metadata(v2_dir, "base", "amd64") or {}
    assert (v1_pkgs["hello"], v2_pkgs["hello"]) == ("2.10-3", "2.10-5")  # upgraded
    assert "openssh-server" in v2_pkgs and "openssh-server" not in v1_pkgs  # added
    assert "deb-bootc" in v1_pkgs and "deb-bootc" in v2_pkgs  # the update section brings the client
    # v1 was composed with outputs [oci, qcow2]: the qcow2 alone, listed in images.json with its checksum
    images = json.loads((v1_dir / "metadata/images.json").read_text())["payload"]["images"]["base"]["amd64"]
    assert sorted(i["format"] for i in images) == ["ociarchive", "qcow2"]
    qcow2 = next(i for i in images if i["format"] == "qcow2")
    assert not list((v1_dir / "compose/base/amd64/images").glob("*.raw"))
    image = v1_dir / qcow2["path"]
    assert sha256_file(image) == qcow2["checksums"]["sha256"]

    # --- the server: v1 published and signed; two forged repositories of a newer commit, for the refusals ---
    publisher = update_source.key
    www = tmp_path / "www"
    www.mkdir()
    target_repo = update_v1.target / "ostree/repo"
    mallory = make_openpgp_key(tmp_path, "mallory")
    try:
        forged = {name: forged_repo(www / name, target_repo, v2.commit, v2.ref, signer, publisher, age)
                  for name, signer, age in (("other-key", mallory, 7200), ("unsigned", None, 3600))}
    finally:
        stop_gpg_agent(mallory)
        stop_gpg_agent(publisher)  # it signed the forged summaries
    assert "published, signed" in publish(v1_dir, www / "pub", publisher)
    serve(www, "pub")

    steps: dict[str, float] = {}
    figures: dict[str, int] = {}
    reports: list[BootReport] = []  # the boot test's report, handed to the continuation
    imported: list[str] = []  # the commit the registry image became in the guest

    def update_and_rollback(vm: VirtualMachine, report: BootReport) -> None:
        reports.append(report)
        # --- boot-test --net: the guest reaches the host's nginx at 10.0.2.2 ---
        probe = (f"exec 3<>/dev/tcp/10.0.2.2/{update_source.port} && printf 'GET /{PUBLISHED_PATH}/config "
                 "HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3; exec 3<&-")
        answer = vm.check(probe, timeout=60)
        assert "200 OK" in answer and "mode=archive" in answer, answer
        # --- v1 follows the signed remote its image carries ---
        conf = vm.check(f"cat /etc/ostree/remotes.d/{REMOTE}.conf")
        assert f"url={update_source.url}\n" in conf and "gpg-verify=true" in conf, conf
        # ostree admin status itself fails here: v1's commit came from the compose's disk image, and its detached
        # signature is only in the published repository (the client lists deployments without it)
        status = vm.check("deb-bootc status")
        assert f"origin:    {REMOTE}:{v1.ref}" in status and "signature: unsigned" in status, status
        assert roles(vm) == [("booted", v1.commit)]
        assert vm.shell("deb-bootc upgrade --check").returncode == NO_UPDATE  # v1 is the newest published
        # that check fetched v1's commit object from the repository, with its signature: now verified locally
        status = vm.check("deb-bootc status")
        assert "signature: valid (Good signature from" in status, status
        # --- state on v1 that the update must keep ---
        vm.check(f"useradd -m -s /bin/bash alice && echo 'alice:{PASSWORD}' | chpasswd")
        vm.check("echo 'made on v1' > /etc/deb-bootc-test.conf")
        vm.check("echo 'kept' > /var/lib/deb-bootc-test-data")
        # --- a newer commit signed by another key, then an unsigned one: refused, nothing staged ---
        before = roles(vm)
        for name, commit in forged.items():
            serve(www, name)
            for args in ("upgrade --check", "upgrade"):
                res = vm.shell(f"deb-bootc {args}", timeout=300)
                assert res.returncode == REFUSED, (name, args, res.output)
                assert "refused" in res.output and "not signed by a key this machine trusts" in res.output, res.output
            assert roles(vm) == before
            assert vm.shell(f"ostree ls {commit} /usr/sbin/sshd").returncode != 0  # its tree was not fetched
        # --- v2 published (a delta from v1): check, upgrade, stage ---
        t = time.monotonic()
        out = publish(v2_dir, www / "pub", publisher)
        assert "published, signed" in out and f"delta from {v1.commit[:12]}" in out, out
        serve(www, "pub")
        steps["publish v2"] = time.monotonic() - t
        t = time.monotonic()
        check = client_json(vm, "upgrade --check")
        assert check["update"] is True, check
        to = check["to"]
        assert isinstance(to, dict) and to["checksum"] == v2.commit and to["version"] == "13.1", check
        changes = check["changes"]
        assert isinstance(changes, dict), check
        added, removed, changed = package_changes(v1_pkgs, v2_pkgs)
        assert {p["name"] for p in changes["added"]} == added and "openssh-server" in added, changes
        assert {p["name"] for p in changes["removed"]} == removed, changes
        assert {p["name"] for p in changes["upgraded"] + changes["downgraded"]} == changed, changes
        assert {"name": "hello", "from": "2.10-3", "to": "2.10-5"} in changes["upgraded"], changes
        text = vm.check("deb-bootc upgrade --check")
        assert "hello 2.10-3 -> 2.10-5" in text and "openssh-server" in text, text
        upgraded = vm.shell("deb-bootc upgrade", timeout=1200)
        assert upgraded.returncode == 0, upgraded.output
        assert roles(vm) == [("staged", v2.commit), ("booted", v1.commit)]
        steps["check+upgrade"] = time.monotonic() - t
        vm.poweroff(timeout=600)  # ostree-finalize-staged runs during this shutdown
        # --- v2 ---
        steps["boot v2"] = vm.boot(BOOT_TIMEOUT)
        status = vm.shell("ostree admin status").output  # the listing, then ostree's complaint about v1's
        assert booted_deployment(status) == (REMOTE, v2.commit), status
        assert roles(vm) == [("booted", v2.commit), ("rollback", v1.commit)]
        status = vm.check("deb-bootc status")
        assert status.count("signature: valid (Good signature from") == 2, status  # v2 as pulled, v1 since the check
        assert vm.shell("deb-bootc upgrade --check").returncode == NO_UPDATE
        assert version(vm, "hello") == "2.10-5" and vm.check("hello").strip() == "Hello, world!"
        assert version(vm, "openssh-server") == v2_pkgs["openssh-server"]
        vm.check("test -x /usr/sbin/sshd && test -f /etc/ssh/sshd_config")  # its /etc files arrived in the merge
        assert vm.check("cat /etc/deb-bootc-test.conf").strip() == "made on v1"  # /etc 3-way merge
        assert vm.check("cat /var/lib/deb-bootc-test-data").strip() == "kept"
        # alice, made on v1, logs in on v2: a PAM login session, her home through /home -> /var/home
        login = vm.check("runuser -l alice -c 'id -un; echo $HOME; pwd -P; touch ~/on-v2 && echo writable'")
        assert login.split() == ["alice", "/home/alice", "/var/home/alice", "writable"], login
        # and her password (set on v1) still verifies against the shadow entry on v2
        verify = "perl -e 'exit(crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? 0 : 1)'"
        vm.check(f"h=$(getent shadow alice | cut -d: -f2); {verify} '{PASSWORD}' \"$h\"")
        assert vm.check("systemctl is-system-running --wait", timeout=600).strip() == "running"
        # --- roll back to v1 with the client ---
        vm.check("deb-bootc rollback")
        after = roles(vm)
        assert [c for _, c in after] == [v1.commit, v2.commit] and ("booted", v2.commit) in after, after
        vm.poweroff(timeout=600)
        steps["boot rollback"] = vm.boot(BOOT_TIMEOUT)
        status = vm.shell("ostree admin status").output
        assert booted_deployment(status) == (REMOTE, v1.commit), status
        assert roles(vm)[0] == ("booted", v1.commit)
        assert version(vm, "hello") == "2.10-3"
        assert vm.shell("test -e /usr/sbin/sshd").returncode != 0
        assert vm.check("cat /etc/deb-bootc-test.conf").strip() == "made on v1"
        assert vm.check("id -un alice").strip() == "alice"
        assert vm.check("cat /var/home/alice/on-v2 && echo ok").strip() == "ok"  # /var is shared

    # the boot-test command line on the v1 compose directory (its image, its commit, its packages, the
    # manifest's boot_test.commands), with QEMU user networking; the update goes on in the same VM session
    spec = boot_cli.spec_for(boot_cli.parser().parse_args([str(v1_dir)]))
    assert spec.image == image and spec.expected_commit == v1.commit
    assert spec.expected_packages == v1_pkgs and "hello" in spec.commands and spec.timeout == 1500
    logs = tmp_path / "logs"
    repo = f"{update_source.registry_host}/debian-bootc/base"
    start = time.monotonic()
    with (serve_registry(tmp_path / "registry", update_source.registry_port, (REGISTRY_NAME,)) as registry,
          nginx(www, update_source.port, tmp_path / "nginx")):
        # --- the registry: v1 unsigned (tag "unsigned"), then v2 signed to the manifest's own destination ---
        t = time.monotonic()
        hosts = private_hosts(tmp_path)
        out = push(v1_dir, registry, hosts, f"{update_source.registry_name}:unsigned")
        assert f"{repo}@" in out and "(unsigned;" in out and f"{repo}:unsigned" in out, out
        out = push(v2_dir, registry, hosts, key=update_source.registry_key)
        assert "(signed (sigstore);" in out and f"{repo}:13.1" in out and f"{repo}:latest" in out, out
        steps["push v1+v2"] = time.monotonic() - t

        def whole_session(vm: VirtualMachine, report: BootReport) -> None:
            update_and_rollback(vm, report)
            imported.append(switch_to_registry(vm, registry, repo, v1.commit, v2.commit, image_layers(v2_dir),
                                               v2_pkgs, steps, figures))

        rc = boot_cli.main([str(v1_dir), "--net", "--log-dir", str(logs)], then=whole_session)
    seconds = time.monotonic() - start
    out = capsys.readouterr().out
    assert rc == 0 and reports, out
    report = reports[0]
    assert report.ok, f"{report.summary()}\nserial log: {report.serial_log}"
    assert f"boot-test: booting {image}" in out and "PASS booted deployment is this compose's commit" in out
    assert f"report: {logs / 'boot-test.json'}" in out
    written = json.loads((logs / "boot-test.json").read_text())
    assert written["ok"] is True and written["booted_commit"] == v1.commit and written["image"] == str(image)
    assert report.booted_commit == v1.commit
    assert len(steps) == 9 and len(imported) == 1, steps
    names = {c.name for c in report.checks}
    assert {"multi-user.target reached", "systemctl is-system-running", "/usr is read-only",
            "booted deployment is this compose's commit", "dpkg -l lists the image's packages"} <= names
    serial = Path(report.serial_log).read_text(errors="replace")
    assert serial.count("Linux version") >= 4 and "multi-user.target" in serial  # all four boots are logged
    # the machine fetched v2 through the static delta publish made
    access = (tmp_path / "nginx/access.log").read_text()
    assert f"/{PUBLISHED_PATH}/deltas/" in access, access[-3000:]
    assert sha256_file(image) == qcow2["checksums"]["sha256"]  # the shipped image was never written
    assert not [p for p in os.listdir(tmp_path / "logs") if p.startswith(".boot-test-")]
    assert not list(v1_dir.glob("logs/boot-test*"))  # boot_test.enabled is false: the compose booted nothing
    print(f"\nFIGURE update+rollback+registry: {seconds:.0f}s for 4 boots (v1 shell after {report.boot_seconds}s; "
          + ", ".join(f"{k} {v:.0f}s" for k, v in steps.items()) + f"); {report.userspace_seconds}; "
          + ", ".join(f"{k} {v}" for k, v in figures.items()))
