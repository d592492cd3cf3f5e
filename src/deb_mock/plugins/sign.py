"""The ``sign`` plugin: sign the build's .buildinfo and .changes with an OpenPGP key, in debsign's format.

As debsign does: the .buildinfo is clearsigned first, the .changes' checksums and size of the .buildinfo are
brought up to date, then the .changes is clearsigned. gpg is the target suite's own, in a throw-away root of
the build's config (the root cache plus a cached layer with gpg), without network, with a GNUPGHOME made for
this build and removed after it. The secret key (``key``: a local file, armoured or binary) and its
passphrase (``passphrase-file``) reach gpg on its standard input: never in an argument, never in a log.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import ClassVar

from pydantic import field_validator

from deb_mock.errors import BadInput
from deb_mock.plugins.base import Plugin, PluginContext, PluginFailed, PluginOptions
from debarchive import safeio
from debsandbox.sandbox import Bind, owned_dir, remove_tree

INSIDE = "/deb-mock/sign"
GPG = f"gpg --batch --no-tty --homedir {INSIDE}/gnupg"
KEY_LIMIT = 1 << 20
_FPR = re.compile(r"^fpr:+([0-9A-F]{40,64}):", re.M)


class SignOptions(PluginOptions):
    key: str  # the secret key file
    passphrase_file: str | None = None
    keyid: str | None = None  # which key of the file signs (a fingerprint; default: the file's first secret key)

    @field_validator("keyid")
    @classmethod
    def _keyid(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^(0x)?[0-9A-Fa-f]{8,64}$", v):
            raise ValueError(f"not a key id or fingerprint: {v!r}")
        return v


def _read(path: str, what: str) -> bytes:
    try:
        return safeio.read_named_file(Path(path), KEY_LIMIT)
    except OSError as exc:
        raise BadInput(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def updated_changes(changes: str, name: str, content: bytes) -> str:
    """``changes`` with the checksums and size of file ``name`` set to those of ``content``."""
    sums = {32: hashlib.md5(content).hexdigest(), 40: hashlib.sha1(content).hexdigest(),
            64: hashlib.sha256(content).hexdigest()}
    out = []
    for line in changes.split("\n"):
        parts = line.split()
        if line.startswith(" ") and parts and parts[-1] == name and len(parts[0]) in sums:
            parts[0], parts[1] = sums[len(parts[0])], str(len(content))
            line = " " + " ".join(parts)
        out.append(line)
    return "\n".join(out)


class SignPlugin(Plugin):
    name = "sign"
    Options: ClassVar[type[PluginOptions]] = SignOptions
    order = 90

    def root_ready(self, ctx: PluginContext) -> None:
        _read(ctx.options.key, "key file")  # fail before the build, not after it
        if ctx.options.passphrase_file:
            _read(ctx.options.passphrase_file, "passphrase file")

    def after_build(self, ctx: PluginContext) -> None:
        names = [f.name for f in ctx.result.files]
        changes = next((n for n in names if n.endswith(".changes")), None)
        buildinfo = next((n for n in names if n.endswith(".buildinfo")), None)
        if changes is None:
            raise PluginFailed("the build made no .changes file to sign")
        staging = ctx.workdir / "sign"
        for d in (staging, staging / "out"):
            owned_dir(d)
        owned_dir(staging / "gnupg", mode=0o700)
        (staging / "in").mkdir(mode=0o755)
        try:
            fpr = self._import(ctx, staging)
            ctx.data["fingerprint"] = fpr
            signed = []
            if buildinfo:
                content = self._sign(ctx, staging, fpr, buildinfo, (ctx.resultdir / buildinfo).read_bytes())
                text = (ctx.resultdir / changes).read_text()
                (ctx.resultdir / changes).write_text(updated_changes(text, buildinfo, content))
                ctx.replace_result_file(buildinfo, content)
                signed.append(buildinfo)
            content = self._sign(ctx, staging, fpr, changes, (ctx.resultdir / changes).read_bytes())
            ctx.replace_result_file(changes, content)
            signed.append(changes)
            ctx.data["signed"] = signed
            ctx.note(f"signed {', '.join(signed)} with {fpr}")
        finally:
            remove_tree(staging)

    def _import(self, ctx: PluginContext, staging: Path) -> str:
        key = _read(ctx.options.key, "key file")
        script = f"set -e\n{GPG} --quiet --import\n{GPG} --with-colons --list-secret-keys\n"
        res = ctx.run_in_root(script, packages=["gpg", "gpg-agent"], as_root=True, stdin=key, capture=True,
                              binds=[Bind(staging, INSIDE, ro=False)])
        fprs = _FPR.findall(res.output)
        if not fprs:
            raise PluginFailed(f"{ctx.options.key} holds no secret key")
        return ctx.options.keyid or fprs[0]

    def _sign(self, ctx: PluginContext, staging: Path, fpr: str, name: str, content: bytes) -> bytes:
        opts: SignOptions = ctx.options
        (staging / "in" / name).write_bytes(content)
        (staging / "in" / name).chmod(0o644)
        user = f"--local-user {fpr}"
        passphrase = b""
        if opts.passphrase_file:
            passphrase = _read(opts.passphrase_file, "passphrase file").split(b"\n")[0] + b"\n"
            user += " --pinentry-mode loopback --passphrase-fd 0"
        script = (f"set -e\n{GPG} --yes {user} --clearsign --output {INSIDE}/out/{name} "
                  f"{INSIDE}/in/{name}\n")
        ctx.run_in_root(script, packages=["gpg", "gpg-agent"], as_root=True, stdin=passphrase,
                        binds=[Bind(staging, INSIDE, ro=False)])
        try:
            return safeio.read_below(staging, f"out/{name}", limit=64 << 20)
        except (OSError, safeio.UnsafeEntry) as exc:
            raise PluginFailed(f"gpg left no signed {name}: {exc}") from None
