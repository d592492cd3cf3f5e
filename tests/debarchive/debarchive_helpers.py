"""Helpers for the debarchive tests: tiny real .deb files, a real source package, gpgv verification."""

from __future__ import annotations

import base64
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from debarchive.signing import SigningKey

DebMaker = Callable[..., Path]


def dearmor(text: str) -> bytes:
    """The binary form of an ASCII-armored OpenPGP block (what ``gpg --dearmor`` does, without touching any
    GnuPG home)."""
    lines = text.strip().splitlines()
    body = lines[lines.index("") + 1 : -1]  # after the armor headers, before the END line
    return base64.b64decode("".join(line for line in body if not line.startswith("=")))


def gpgv(key: SigningKey, tmp: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    """Verify with bookworm's gpgv against the exported public key (gpgv wants a binary keyring)."""
    asc = key.export_public(tmp / "key.asc")
    keyring = tmp / "key.gpg"
    keyring.write_bytes(dearmor(asc.read_text()))
    return subprocess.run(["gpgv", "--keyring", str(keyring), *map(str, files)], capture_output=True, text=True)


def secret_key_listing(home: Path) -> str:
    """``gpg --list-secret-keys`` in colon format; stops the agent that gpg starts for it."""
    try:
        return subprocess.run(["gpg", "--homedir", str(home), "--with-colons", "--list-secret-keys"],
                              capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)


def build_deb(
    out_dir: Path,
    name: str,
    version: str,
    arch: str = "all",
    *,
    depends: str | None = None,
    source: str | None = None,
    payload: str = "hello\n",
    compression: str = "xz",
) -> Path:
    """``dpkg-deb --build`` a made-up package that installs /usr/share/<name>/README."""
    tree = out_dir / f"tree-{name}-{version}-{arch}"
    (tree / "DEBIAN").mkdir(parents=True)
    share = tree / "usr" / "share" / name
    share.mkdir(parents=True)
    (share / "README").write_text(payload)
    control = [
        f"Package: {name}",
        f"Version: {version}",
        f"Architecture: {arch}",
        "Maintainer: Test <tests@localhost>",
        "Section: misc",
        "Priority: optional",
    ]
    if source:
        control.append(f"Source: {source}")
    if depends:
        control.append(f"Depends: {depends}")
    control.append(f"Description: made-up package {name}\n A package built by the debarchive tests.\n .\n Second par.")
    (tree / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
    deb = out_dir / f"{name}_{version.split(':')[-1]}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(tree), str(deb)], check=True,
                   capture_output=True)
    return deb


def build_source(out_dir: Path, name: str = "dak-hello", version: str = "1.0") -> Path:
    """A real native (3.0) source package made with ``dpkg-source -b``; returns its .dsc."""
    tree = out_dir / f"{name}-{version}"
    (tree / "debian" / "source").mkdir(parents=True)
    (tree / "debian" / "source" / "format").write_text("3.0 (native)\n")
    (tree / "debian" / "control").write_text(textwrap.dedent(f"""\
        Source: {name}
        Section: misc
        Priority: optional
        Maintainer: Test <tests@localhost>
        Build-Depends: debhelper-compat (= 13)
        Standards-Version: 4.6.2

        Package: {name}
        Architecture: all
        Depends: ${{misc:Depends}}
        Description: made-up source package
         Built by the debarchive tests.
        """))
    (tree / "debian" / "changelog").write_text(textwrap.dedent(f"""\
        {name} ({version}) unstable; urgency=medium

          * Made up.

         -- Test <tests@localhost>  Sun, 22 Nov 2026 00:00:00 +0000
        """))
    (tree / "README").write_text("source\n")
    subprocess.run(["dpkg-source", "-b", tree.name], cwd=out_dir, check=True, capture_output=True)
    dsc = out_dir / f"{name}_{version}.dsc"
    assert dsc.is_file()
    return dsc


def still_there_after(find: Callable[[], list[str]], seconds: float = 5.0) -> list[str]:
    """What ``find`` keeps returning for ``seconds``: a leak persists, a process another xdist worker is
    stopping right now (its agent killed, its home link just removed) is gone a moment later."""
    deadline = time.monotonic() + seconds
    found = find()
    while found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = find()
    return found


def gpg_agents() -> list[tuple[str, str]]:
    """Running gpg-agents: (command line, home directory), for the tests that check none is left behind."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and argv[0].endswith("gpg-agent") and "--homedir" in argv[:-1]:
            found.append((" ".join(argv), argv[argv.index("--homedir") + 1]))
    return found


def assert_no_gpg_agent_left(base: str, private_prefix: str) -> None:
    """No gpg-agent of a home under ``base`` (the tests' own), nor of a removed private home of the code under
    test (``private_prefix``, e.g. /tmp/dak-), is still running 5 s from now."""

    def leaked() -> list[str]:
        return [cmd for cmd, home in gpg_agents() if home.startswith(base) or
                (home.startswith(private_prefix) and not Path(home).exists())]

    left = still_there_after(leaked)
    assert left == [], f"gpg-agent processes left running: {left}"
