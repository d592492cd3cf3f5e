"""skopeo with a private configuration: its own ``registries.d`` (where signatures go), its own policy (a push
verifies nothing), certificates from ``--cert-dir``; failures turned into one clear line."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose.registry.images import PushError
from debsandbox.commands import CommandTimeout, run

UNREACHABLE = re.compile(r"connection refused|no such host|i/o timeout|network is unreachable|no route to host|"
                         r"server misbehaving|connection reset", re.I)
TLS = re.compile(r"x509:|tls:|certificate|http: server gave HTTP response to HTTPS client", re.I)
NOT_FOUND = re.compile(r"identifier is not an image|does not resolve to an image ID|manifest unknown|name unknown|"
                       r"repository name not known|no such image", re.I)
AUTH = re.compile(r"unauthorized|authentication required|requested access to the resource is denied", re.I)
# from ``skopeo --debug copy``: every blob is "Copying blob …"; the registry's own are then "Skipping blob …"
SKIPPED = re.compile(r'msg="Skipping blob sha256:[0-9a-f]+ \(already present\)')
COPYING = re.compile(r"^Copying blob ", re.M)
DEBUG = re.compile(r'^time="[^"]*" level=(debug|info|warning) ')


@dataclass
class Skopeo:
    """One push's skopeo settings. ``workdir`` holds the private registries.d and the policy."""

    workdir: Path
    log: Path | None = None
    cert_dir: Path | None = None
    tls_verify: bool = True
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 3600

    def __post_init__(self) -> None:
        self.registries_d.mkdir(parents=True, exist_ok=True)
        self.policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')

    @property
    def registries_d(self) -> Path:
        return self.workdir / "registries.d"

    @property
    def policy(self) -> Path:
        return self.workdir / "policy.json"

    def global_args(self) -> list[str]:
        return ["skopeo", "--policy", str(self.policy), "--registries.d", str(self.registries_d)]

    def dest_args(self) -> list[str]:
        args = [] if self.cert_dir is None else ["--dest-cert-dir", str(self.cert_dir)]
        return [*args, f"--dest-tls-verify={'true' if self.tls_verify else 'false'}"]

    def src_args(self) -> list[str]:
        args = [] if self.cert_dir is None else ["--cert-dir", str(self.cert_dir)]
        return [*args, f"--tls-verify={'true' if self.tls_verify else 'false'}"]

    def _run(self, argv: Sequence[str], what: str, host: str) -> str:
        try:
            done = run(argv, log=self.log, capture=True, check=False, timeout=self.timeout,
                       extra_env=self.env or None, tail=60)
        except CommandTimeout:
            raise PushError(f"{what}: skopeo did not finish within {self.timeout:.0f} s") from None
        if done.returncode != 0:
            raise PushError(explain(done.output, what, host))
        return done.output

    def copy(self, source: str, dest: str, host: str, extra: Sequence[str] = ()) -> tuple[str, str]:
        """``skopeo copy --preserve-digests``; (its output, the pushed manifest digest)."""
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            digestfile = Path(tmp) / "digest"
            argv = [*self.global_args(), "--debug", "copy", "--preserve-digests", "--digestfile", str(digestfile),
                    *self.dest_args(), *extra, source, dest]
            out = self._run(argv, f"pushing to {dest}", host)
            digest = digestfile.read_text().strip() if digestfile.is_file() else ""
        return out, digest

    def pull(self, source: str, dest: str, host: str, extra: Sequence[str] = ()) -> None:
        """``skopeo copy SOURCE DEST`` from a registry or local storage into a local layout (``extra``: the
        source's TLS options); signatures are not kept (a layout cannot hold them)."""
        self._run([*self.global_args(), "copy", "--remove-signatures", *extra, source, dest], f"reading {source}",
                  host)

    def inspect_raw(self, ref: str, host: str) -> bytes:
        out = self._run([*self.global_args(), "inspect", "--raw", *self.src_args(), ref], f"reading {ref}", host)
        return out.encode()


def explain(output: str, what: str, host: str) -> str:
    """One line for people from skopeo's output."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip() and not DEBUG.match(ln)]
    last = lines[-1] if lines else "(no output)"
    last = re.sub(r'^time="[^"]*" level=\w+ msg="(.*)"$', r"\1", last)
    output = "\n".join(lines)  # what went wrong, without --debug's chatter (which names certificates, hosts…)
    if UNREACHABLE.search(output):
        return f"{what}: the registry {host} is unreachable ({last}); is it running, and are the host and port right?"
    if TLS.search(output):
        return (f"{what}: TLS failure talking to {host} ({last}); give its CA with --cert-dir DIR (DIR/ca.crt) or "
                f"install it as /etc/containers/certs.d/{host}/ca.crt")
    if AUTH.search(output):
        return f"{what}: the registry {host} refused the credentials ({last}); log in first: skopeo login {host}"
    if NOT_FOUND.search(output):
        return (f"{what}: no such image ({last}); check its name and tag ('podman images' lists the local ones, "
                "'skopeo list-tags docker://HOST/REPOSITORY' a registry's)")
    return f"{what}: skopeo failed: {last}"


def blob_counts(output: str) -> tuple[int, int]:
    """(blobs copied, blobs the registry already had) from ``skopeo --debug copy``'s output."""
    skipped = len(SKIPPED.findall(output))
    return len(COPYING.findall(output)) - skipped, skipped


__all__ = ["Skopeo", "blob_counts", "explain"]
