"""The ``autopkgtest`` plugin (``--run-autopkgtest``): the package's own tests (``debian/tests/control``) against
the packages just built, as sbuild runs them, with the target suite's autopkgtest, in deb-mock's sandbox.

The testbed is a throw-away root of the build's config (the root cache plus a cached layer with autopkgtest)
into which the built .debs and the tests' dependencies are installed: apt downloads them with the network,
dpkg and their maintainer scripts run without it. autopkgtest then runs the tests there with its ``null``
runner (the testbed is the sandbox), as ns-root, without network; tests that need a container or a machine
of their own (``isolation-container``, ``isolation-machine``) are skipped by autopkgtest itself.

``result.json``'s ``plugins.autopkgtest``: each test's result (``PASS``, ``FAIL``, ``SKIP``, ``FLAKY``,
``NEUTRAL``) and autopkgtest's exit code; ``fail-on`` (``failure``, the default, or ``none``).
"""

from __future__ import annotations

import re
import shlex
import shutil
from typing import ClassVar, Literal

from debian.deb822 import Deb822

from deb_mock.plugins.base import Plugin, PluginContext, PluginFailed, PluginOptions
from debarchive import safeio
from debsandbox.sandbox import Bind, owned_dir

INSIDE = "/deb-mock/autopkgtest"
_RESULT = re.compile(r"^(\S+)\s+(PASS|FAIL|SKIP|FLAKY|NEUTRAL)\b", re.M)
_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+")
NO_CONTROL = "@@@ no debian/tests/control"


class AutopkgtestOptions(PluginOptions):
    fail_on: Literal["failure", "none"] = "failure"


def dependencies_of_tests(control: str, binaries: list[str]) -> tuple[list[str], list[str]]:
    """The packages the tests need (the first of each alternative; ``@`` is every built package) and the
    dependencies this plugin cannot give them (``@builddeps@``, ``@recommends@``)."""
    names: list[str] = []
    missed: list[str] = []
    for para in Deb822.iter_paragraphs(control):
        if "Tests" not in para and "Test-Command" not in para:
            continue
        for rel in (r.strip() for r in para.get("Depends", "@").replace("\n", " ").split(",")):
            first = rel.split("|")[0].strip()
            if first == "@":
                names += binaries
            elif first.startswith("@"):
                missed.append(first)
            elif m := _NAME.match(first):
                names.append(m.group(0))
    return list(dict.fromkeys(names)), sorted(set(missed))


class AutopkgtestPlugin(Plugin):
    name = "autopkgtest"
    Options: ClassVar[type[PluginOptions]] = AutopkgtestOptions
    order = 45

    def after_build(self, ctx: PluginContext) -> None:
        assert ctx.source_bind is not None and ctx.source_path is not None
        control = self._control(ctx)
        if control is None:
            ctx.data.update(tests={}, note="the source has no debian/tests/control")
            return
        debs = [f.name for f in ctx.result.files if f.name.endswith(".deb")]
        depends, missed = dependencies_of_tests(control, sorted({d.split("_")[0] for d in debs}))
        if missed:
            ctx.note(f"not installed for the tests (not supported here): {', '.join(missed)}")
        staging = ctx.workdir / "autopkgtest"
        owned_dir(staging / "out")
        (staging / "debs").mkdir(mode=0o755)
        for name in debs:
            shutil.copyfile(ctx.resultdir / name, staging / "debs" / name)
            (staging / "debs" / name).chmod(0o644)
        built = {d.split("_")[0] for d in debs}
        install = [f"{INSIDE}/debs/{d}" for d in debs] + [p for p in depends if p not in built]
        source = ctx.source_path + ("/" if ctx.source_bind.dst == ctx.source_path else "")
        script = (f"autopkgtest --no-built-binaries --summary-file {INSIDE}/out/summary --output-dir /tmp/out "
                  f"{shlex.quote(source)} -- null\n")
        res = ctx.run_in_root(script, packages=["autopkgtest"], install=install, as_root=True, check=False,
                              binds=[ctx.source_bind, Bind(staging, INSIDE, ro=False)])
        try:
            summary = safeio.read_below(staging, "out/summary", limit=1 << 20).decode("utf-8", "replace")
        except (OSError, safeio.UnsafeEntry):
            summary = ""
        tests = {m.group(1): m.group(2) for m in _RESULT.finditer(summary)}
        ctx.data.update(tests=tests, exit_code=res.returncode, fail_on=ctx.options.fail_on)
        if res.returncode >= 12 or (res.returncode and not tests):
            raise PluginFailed(f"autopkgtest could not run the tests (exit {res.returncode}): "
                               f"{' '.join(res.tail_lines[-2:])[:300]}")
        failed = [t for t, r in tests.items() if r == "FAIL"]
        if failed and ctx.options.fail_on == "failure":
            raise PluginFailed(f"{len(failed)} of {len(tests)} test(s) failed (fail-on: failure): {', '.join(failed)}")

    def _control(self, ctx: PluginContext) -> str | None:
        """debian/tests/control, read in the sandbox (a .dsc is unpacked there)."""
        src = shlex.quote(ctx.source_path or "")
        unpack = "" if ctx.source_bind and ctx.source_bind.dst == ctx.source_path else (
            f"dpkg-source --no-check -x {src} /tmp/s >/dev/null 2>&1\ncd /tmp/s\n")
        where = "." if unpack else src
        script = (f"set -e\n{unpack}if [ -f {where}/debian/tests/control ]; then cat {where}/debian/tests/control; "
                  f"else echo '{NO_CONTROL}'; fi\n")
        assert ctx.source_bind is not None
        res = ctx.run_in_root(script, binds=[ctx.source_bind], capture=True)
        if NO_CONTROL in res.output:
            return None
        return res.output
