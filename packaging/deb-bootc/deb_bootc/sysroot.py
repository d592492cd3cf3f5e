"""The machine's OSTree sysroot as the client sees it: deployments, their origins, commits and remotes.

Everything is read through the ``ostree`` command line and the files libostree keeps (origin files, the
repository's config, ``/etc/ostree/remotes.d``): the same sources ``ostree admin status`` uses, so the
client and libostree never disagree."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

from . import packages, parse
from .errors import ClientError, NotOstreeError
from .runner import Result, last_line, run

IMAGE_KEY = "deb-bootc.image"  # commit metadata of an imported OCI image: the image reference it came from
DIGEST_KEY = "deb-bootc.image-digest"  # ... and its manifest digest
DPKG_STATUS = ("usr/lib/sysimage/dpkg/status", "usr/share/dpkg/database/status", "var/lib/dpkg/status")


@dataclass
class Origin:
    refspec: str | None = None
    remote: str | None = None
    ref: str | None = None
    image: str | None = None  # docker://HOST/NAME:TAG for deployments imported from a registry

    def describe(self) -> str:
        if self.image:
            return self.image
        return self.refspec or "none"


@dataclass
class Deployment:
    index: int
    osname: str
    checksum: str
    serial: int
    booted: bool
    staged: bool
    pending: bool
    rollback: bool
    pinned: bool
    version: str | None
    origin: Origin
    signature: parse.Signatures = field(default_factory=lambda: parse.Signatures("not-checked"))

    @property
    def role(self) -> str:
        if self.booted:
            return "booted"
        if self.staged:
            return "staged"
        if self.pending:
            return "pending"
        if self.rollback:
            return "rollback"
        if self.index == 0:
            return "default"  # an offline sysroot's next boot (nothing is booted from it)
        return "other"

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index, "role": self.role, "osname": self.osname, "checksum": self.checksum,
            "serial": self.serial, "booted": self.booted, "staged": self.staged, "pinned": self.pinned,
            "version": self.version,
            "origin": {"refspec": self.origin.refspec, "remote": self.origin.remote, "ref": self.origin.ref,
                       "image": self.origin.image},
            "signature": {"state": self.signature.state, "detail": self.signature.detail},
        }


class Sysroot:
    """``path`` is ``/`` on an installed machine; tests and installers give another (``--sysroot``)."""

    def __init__(self, path: str = "/") -> None:
        self.path = path
        self.repo = os.path.join(path, "ostree", "repo")
        if not os.path.isdir(self.repo):
            raise NotOstreeError(f"{path} is not an OSTree sysroot (no {self.repo}): deb-bootc manages machines "
                                 "installed from an OSTree image")

    @property
    def live(self) -> bool:
        """Whether this is the running system booted from a deployment (staging needs that)."""
        return os.path.realpath(self.path) == "/" and os.path.exists("/run/ostree-booted")

    def state_dir(self, osname: str) -> str:
        """Where the client keeps images and scratch trees: /var/lib/deb-bootc of the machine (for another
        sysroot, the same directory in its stateroot's /var)."""
        if os.path.realpath(self.path) == "/":
            return "/var/lib/deb-bootc"
        return os.path.join(self.path, "ostree", "deploy", osname, "var", "lib", "deb-bootc")

    def admin(self, verb: str, *args: str, quiet: bool = True, check: bool = True) -> Result:
        return run(["ostree", "admin", verb, f"--sysroot={self.path}", *args], quiet=quiet, check=check)

    def ostree(self, *args: str, quiet: bool = True, check: bool = True) -> Result:
        cmd, *rest = args
        return run(["ostree", cmd, f"--repo={self.repo}", *rest], quiet=quiet, check=check)

    # ---- commits ----
    def metadata(self, commit: str, key: str) -> str | None:
        res = self.ostree("show", f"--print-metadata-key={key}", commit, check=False)
        if res.rc != 0:
            return None
        try:
            return parse.gvariant_string(res.out)
        except (ValueError, SyntaxError):
            return None

    def packages_of(self, commit: str, deployment_dir: str | None = None) -> dict[str, str] | None:
        """The package list recorded in the commit, or (for the deployments of older images) the one in the
        deployment's dpkg database; None when neither is there."""
        text = self.metadata(commit, packages.PACKAGES_KEY)
        if text is not None:
            try:
                return packages.from_json(text)
            except ValueError:
                pass
        for rel in DPKG_STATUS if deployment_dir else ():
            path = os.path.join(deployment_dir or "", rel)
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    return packages.from_dpkg_status(fh.read())
        return None

    def rev_parse(self, ref: str) -> str | None:
        res = self.ostree("rev-parse", ref, check=False)
        return res.out.strip() if res.rc == 0 else None

    # ---- remotes ----
    def remote_config(self, name: str) -> dict[str, str] | None:
        """The remote's settings from the repo config and remotes.d (as libostree merges them), or None."""
        files = [os.path.join(self.repo, "config")]
        files += sorted(glob.glob(os.path.join(self.path, "etc", "ostree", "remotes.d", "*.conf")))
        found: dict[str, str] | None = None
        for path in files:
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    groups = parse.keyfile(fh.read())
            except (OSError, ValueError):
                continue
            group = groups.get(f'remote "{name}"')
            if group is not None:
                found = {**(found or {}), **group}
        return found

    def remote_verifies(self, name: str) -> bool:
        conf = self.remote_config(name)
        return conf is not None and parse.keyfile_bool(conf.get("gpg-verify"), True)

    def signatures(self, commit: str, remote: str) -> parse.Signatures:
        res = self.ostree("show", f"--gpg-verify-remote={remote}", commit, check=False)
        if res.rc != 0 and "no signatures found" in res.err:
            return parse.Signatures("unsigned", [last_line(res.err)])
        if res.rc != 0:
            return parse.Signatures("not-checked", [last_line(res.err)])
        return parse.parse_signatures(res.out)

    # ---- deployments ----
    def origin_file(self, e: parse.StatusEntry) -> str:
        return os.path.join(self.path, "ostree", "deploy", e.osname, "deploy", f"{e.checksum}.{e.serial}.origin")

    def deployment_dir(self, d: Deployment) -> str:
        return os.path.join(self.path, "ostree", "deploy", d.osname, "deploy", f"{d.checksum}.{d.serial}")

    def _origin(self, e: parse.StatusEntry) -> Origin:
        refspec = e.refspec
        image = None
        path = self.origin_file(e)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as fh:
                groups = parse.keyfile(fh.read())
            refspec = groups.get("origin", {}).get("refspec", refspec)
            image = groups.get("deb-bootc", {}).get("image")
        if image is None:
            image = self.metadata(e.checksum, IMAGE_KEY) if refspec and ":" not in refspec else None
        remote, ref = parse.split_refspec(refspec) if refspec else (None, None)
        return Origin(refspec=refspec, remote=remote, ref=ref, image=image)

    def admin_status(self) -> str:
        """``ostree admin status``'s listing. ostree verifies each deployment's commit against its remote there
        and fails on a commit without a signature ("GPG verification enabled, but no signatures found"): a
        machine installed from a compose's disk image runs the compose's commit, whose detached signature only
        the published repository holds. The listing does not depend on it (signatures are checked on their own,
        :meth:`_signature_state`), so it is taken again with the remote definitions hidden: a private mount
        namespace with an empty tmpfs over ``/etc/ostree/remotes.d`` (nothing changes for other processes)."""
        res = self.admin("status", check=False)
        if res.rc == 0:
            return res.out
        remotes = os.path.join(self.path, "etc", "ostree", "remotes.d")
        if "no signatures found" in res.err and os.path.isdir(remotes) and os.geteuid() == 0:
            hidden = run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          'mount -t tmpfs -o size=64k,mode=0755 deb-bootc "$0" && exec ostree admin status '
                          '--sysroot="$1"', remotes, self.path], check=False)
            if hidden.rc == 0:
                return hidden.out
        raise ClientError(f"ostree admin status failed: {last_line(res.err)}")

    def deployments(self, *, signatures: bool = True) -> list[Deployment]:
        entries = parse.parse_admin_status(self.admin_status())
        out = []
        has_booted = any(e.booted for e in entries)
        for e in entries:
            origin = self._origin(e)
            d = Deployment(
                index=e.index, osname=e.osname, checksum=e.checksum, serial=e.serial, booted=e.booted,
                staged="staged" in e.flags, pending="pending" in e.flags, rollback="rollback" in e.flags,
                pinned=e.pinned, version=e.version or self.metadata(e.checksum, "version"), origin=origin,
            )
            if not has_booted and e.index == 1 and not d.staged:  # an offline sysroot: the next one is the rollback
                d.rollback = True
            if signatures:
                d.signature = self._signature_state(d)
            out.append(d)
        return out

    def _signature_state(self, d: Deployment) -> parse.Signatures:
        if d.origin.image:
            return parse.Signatures("policy", [f"imported from {d.origin.image}; verified by skopeo against "
                                               "/etc/containers/policy.json when it was pulled"])
        if not d.origin.remote:
            return parse.Signatures("local", ["follows a local ref: no remote, nothing to verify"])
        if self.remote_config(d.origin.remote) is None:
            return parse.Signatures("not-checked", [f"remote {d.origin.remote!r} is not configured"])
        sig = self.signatures(d.checksum, d.origin.remote)
        if not self.remote_verifies(d.origin.remote):
            sig.detail.insert(0, f"remote {d.origin.remote!r} has gpg-verify=false: updates are NOT verified")
        return sig

    def default(self, deployments: list[Deployment]) -> Deployment:
        """What the machine runs (or, offline, what it boots next): the booted deployment, else index 0."""
        for d in deployments:
            if d.booted:
                return d
        if not deployments:
            raise ClientError(f"{self.path} has no deployments")
        return deployments[0]


def require_root() -> None:
    if os.geteuid() != 0:
        raise ClientError("this needs root: run it with sudo")
