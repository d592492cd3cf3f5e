"""Real git packaging repositories for the tests, served over HTTP (git's dumb protocol: a bare repository
after ``git update-server-info`` behind python's http.server). Packages are tiny arch:all ones whose
debian/rules needs nothing beyond build-essential, so deb-mock builds them in seconds."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deb_bootc_compose.gitsource import gbp_upstream_tag

CHANGELOG = """\
{name} ({version}) unstable; urgency=medium

  * Test package made from git.

 -- Test <test@example.org>  Sat, 21 Nov 2026 00:00:00 +0000
"""
RULES = """\
#!/usr/bin/make -f
build build-arch build-indep:
\t{build_step}
binary binary-indep: build
\trm -rf debian/tmp
\tinstall -D -m 0755 greet debian/tmp/usr/bin/{name}
\tinstall -d debian/tmp/DEBIAN
\tdpkg-gencontrol -p{name} -Pdebian/tmp
\tdpkg-deb --root-owner-group --build debian/tmp ..
binary-arch: build
clean:
\trm -rf debian/tmp debian/files
.PHONY: build build-arch build-indep binary binary-arch binary-indep clean
"""
CONTROL = """\
Source: {name}
Section: misc
Priority: optional
Maintainer: Test <test@example.org>
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: {name}
Architecture: all
Description: test package {name} made from git
 test
"""
ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.org", "GIT_COMMITTER_NAME": "Test",
       "GIT_COMMITTER_EMAIL": "test@example.org", "GIT_AUTHOR_DATE": "2026-11-21T00:00:00Z",
       "GIT_COMMITTER_DATE": "2026-11-21T00:00:00Z", "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, env=ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


def _debian(tree: Path, name: str, version: str, fmt: str, build_seconds: int = 0) -> None:
    (tree / "debian" / "source").mkdir(parents=True, exist_ok=True)
    (tree / "debian" / "control").write_text(CONTROL.format(name=name))
    (tree / "debian" / "changelog").write_text(CHANGELOG.format(name=name, version=version))
    (tree / "debian" / "source" / "format").write_text(fmt + "\n")
    rules = tree / "debian" / "rules"
    step = f"echo building for {build_seconds} s; sleep {build_seconds}" if build_seconds else "true"
    rules.write_text(RULES.format(name=name, build_step=step))
    rules.chmod(0o755)


def _greet(tree: Path, text: str) -> None:
    greet = tree / "greet"
    greet.write_text(f'#!/bin/sh\necho "{text}"\n')
    greet.chmod(0o755)


def _publish(work: Path, root: Path, name: str) -> Path:
    """Push ``work`` (all branches and tags) to a bare ``root/<name>.git`` ready for dumb HTTP."""
    bare = root / f"{name}.git"
    git(root, "init", "--quiet", "--bare", str(bare))
    git(work, "push", "--quiet", "--all", str(bare))
    git(work, "push", "--quiet", "--tags", str(bare))
    git(bare, "update-server-info")
    return bare


def native_repo(root: Path, name: str, version: str, *, build_seconds: int = 0) -> Path:
    """A ``3.0 (native)`` package on branch main; returns the bare repository. ``build_seconds`` makes its
    build step take that long (a window in which a test can act on a running build)."""
    work = root / f"{name}-work"
    work.mkdir(parents=True)
    git(work, "init", "--quiet")
    _greet(work, f"hello from {name}")
    _debian(work, name, version, "3.0 (native)", build_seconds)
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", f"{name} {version}")
    git(work, "tag", f"debian/{version}")
    return _publish(work, root, name)


def quilt_repo(root: Path, name: str, upstream: str, revision: str = "1") -> Path:
    """A ``3.0 (quilt)`` package in git-buildpackage's layout: upstream history tagged ``upstream/<version>``,
    packaging (debian/ with one patch, patches unapplied) on branch main; returns the bare repository."""
    work = root / f"{name}-work"
    work.mkdir(parents=True)
    git(work, "init", "--quiet")
    _greet(work, "hello from upstream")
    (work / "README").write_text(f"{name} {upstream}, upstream sources\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", f"upstream {upstream}")
    git(work, "tag", gbp_upstream_tag(upstream))
    _debian(work, name, f"{upstream}-{revision}", "3.0 (quilt)")
    patches = work / "debian" / "patches"
    patches.mkdir()
    (patches / "series").write_text("greeting.patch\n")
    (patches / "greeting.patch").write_text(f"""\
Description: greet from the Debian package
--- a/greet
+++ b/greet
@@ -1,2 +1,2 @@
 #!/bin/sh
-echo "hello from upstream"
+echo "hello from {name}, patched"
""")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", f"{name} {upstream}-{revision}")
    return _publish(work, root, name)


def no_debian_repo(root: Path, name: str) -> Path:
    work = root / f"{name}-work"
    work.mkdir(parents=True)
    git(work, "init", "--quiet")
    _greet(work, "no packaging here")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "upstream only")
    return _publish(work, root, name)


