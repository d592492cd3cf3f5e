"""Pure parsers of what ostree prints and stores: ``ostree admin status``, GVariant strings, key files,
signature reports, refspecs. No process is run here (unit-tested on the build host)."""

from __future__ import annotations

import ast
import configparser
import re
from dataclasses import dataclass, field

HEADER = re.compile(r"^(?P<mark>[* ]) (?P<osname>\S+) (?P<csum>[0-9a-f]{64})\.(?P<serial>\d+)(?P<rest>.*)$")


@dataclass
class StatusEntry:
    """One deployment as ``ostree admin status`` lists it (in boot order: index 0 is the default)."""

    index: int
    osname: str
    checksum: str
    serial: int
    booted: bool = False
    flags: list[str] = field(default_factory=list)  # staged, pending, rollback, finalization-locked, ...
    version: str | None = None
    refspec: str | None = None
    pinned: bool = False


def parse_admin_status(text: str) -> list[StatusEntry]:
    """The deployments of ``ostree admin status`` (2022.7 to 2025.x print the same header and fields)."""
    out: list[StatusEntry] = []
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            flags = [f.strip().replace(" ", "-") for f in re.findall(r"\(([^)]*)\)", m["rest"])]
            out.append(StatusEntry(index=len(out), osname=m["osname"], checksum=m["csum"], serial=int(m["serial"]),
                                   booted=m["mark"] == "*", flags=flags))
            continue
        if not out:
            continue
        cur = out[-1]
        stripped = line.strip()
        if stripped.startswith("Version:"):
            cur.version = stripped.partition(":")[2].strip()
        elif stripped.startswith("origin refspec:"):
            cur.refspec = stripped.partition(":")[2].strip()
        elif stripped == "Pinned: yes":
            cur.pinned = True
    return out


def gvariant_string(text: str) -> str:
    """The value of a GVariant string as ``ostree show --print-metadata-key`` prints it (``'1.0'`` or
    ``"it's"``, with C-like escapes)."""
    text = text.strip()
    if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0]:
        raise ValueError(f"not a GVariant string: {text[:60]!r}")
    value = ast.literal_eval(text)
    if not isinstance(value, str):
        raise ValueError(f"not a GVariant string: {text[:60]!r}")
    return value


def keyfile(text: str) -> dict[str, dict[str, str]]:
    """A GKeyFile (origin files, repo config, remotes.d) as {group: {key: value}}; later groups win."""
    cp = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",), comment_prefixes=("#",))
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(text)
    return {s: dict(cp.items(s)) for s in cp.sections()}


def split_refspec(refspec: str) -> tuple[str | None, str]:
    """``REMOTE:REF`` -> (remote, ref); a local ``REF`` -> (None, ref)."""
    remote, sep, ref = refspec.partition(":")
    return (remote, ref) if sep else (None, refspec)


def keyfile_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "yes")


@dataclass
class Signatures:
    state: str  # valid | invalid | unsigned | untrusted | not-checked
    detail: list[str] = field(default_factory=list)


def parse_signatures(text: str) -> Signatures:
    """What ``ostree show --gpg-verify-remote=REMOTE COMMIT`` says about the commit's OpenPGP signatures."""
    if not re.search(r"^Found \d+ signatures?:", text, re.M):
        return Signatures("unsigned")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    good = [ln for ln in lines if ln.startswith("Good signature from")]
    bad = [ln for ln in lines if ln.startswith("BAD signature")]
    unknown = [ln for ln in lines if "public key not found" in ln]
    expired = [ln for ln in lines if re.search(r"\b(Key|Signature) expired\b", ln) and "never" not in ln]
    if good and not bad and not expired:
        return Signatures("valid", good)
    if bad or expired:
        return Signatures("invalid", bad + expired)
    if unknown:
        return Signatures("untrusted", [ln for ln in lines if ln.startswith("Signature made")] + unknown)
    return Signatures("invalid", lines[-3:])


SIGNATURE_ERRORS = ("GPG", "gpg", "signature", "Signature", "policy", "Source image rejected")


def is_signature_error(message: str) -> bool:
    """Whether ostree's or skopeo's error says that verification (not the network or the disk) failed."""
    return any(word in message for word in SIGNATURE_ERRORS)
