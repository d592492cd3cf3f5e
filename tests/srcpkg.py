"""Make small real Debian source packages for tests (dpkg-source -b on the host)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

RULES_DH = "#!/usr/bin/make -f\n%:\n\tdh $@\n"


def make_source(
    workdir: Path,
    name: str,
    version: str = "1.0",
    *,
    build_depends: str = "debhelper-compat (= 13)",
    architecture: str = "all",
    binaries: dict[str, str] | None = None,
    rules: str = RULES_DH,
    files: dict[str, str] | None = None,
    install: dict[str, str] | None = None,
    build_source: bool = True,
) -> Path:
    """Write NAME-VERSION/ with a debian/ directory; return the .dsc (or the tree if not build_source).

    ``binaries`` maps binary package names to their extra control fields (e.g. "Depends: libfoo1").
    ``files`` are written into the tree; ``install`` maps binary package -> debian/PKG.install content.
    """
    tree = workdir / f"{name}-{version}"
    (tree / "debian" / "source").mkdir(parents=True, exist_ok=True)
    binaries = binaries or {name: ""}
    control = textwrap.dedent(
        f"""\
        Source: {name}
        Section: misc
        Priority: optional
        Maintainer: deb-mock tests <tests@example.org>
        Build-Depends: {build_depends}
        Standards-Version: 4.7.0
        Rules-Requires-Root: no
        """
    )
    for binary, extra in binaries.items():
        control += f"\nPackage: {binary}\nArchitecture: {architecture}\n"
        if extra:
            control += extra.rstrip("\n") + "\n"
        control += f"Description: test package {binary}\n test package made by deb-mock's tests\n"
    (tree / "debian" / "control").write_text(control)
    (tree / "debian" / "changelog").write_text(
        f"{name} ({version}) unstable; urgency=medium\n\n  * Test package.\n\n"
        " -- deb-mock tests <tests@example.org>  Sun, 01 Nov 2026 00:00:00 +0000\n"
    )
    (tree / "debian" / "rules").write_text(rules)
    (tree / "debian" / "rules").chmod(0o755)
    (tree / "debian" / "source" / "format").write_text("3.0 (native)\n")
    (tree / "debian" / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
    )
    for rel, content in (files or {}).items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(content)
    for binary, content in (install or {}).items():
        (tree / "debian" / f"{binary}.install").write_text(content)
    if not build_source:
        return tree
    subprocess.run(["dpkg-source", "-b", tree.name], cwd=workdir, check=True, capture_output=True)
    return workdir / f"{name}_{version}.dsc"


def interactive_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: give it SIGINT's default disposition,
    as in a terminal. A test run started in the background by a non-interactive shell inherits SIGINT
    ignored, and a Python child that starts with SIGINT ignored never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
