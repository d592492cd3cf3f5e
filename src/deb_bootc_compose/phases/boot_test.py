"""Phase ``boot-test``: boot each variant's disk image in QEMU and check it (``boot_test: {enabled: true}``).

A failing boot test does not abort the compose: the report goes to ``logs/boot-test-<variant>-<arch>.json``
with the full serial log beside it, and the reason is appended to ``ctx.extra["incomplete"]`` — the
compose runner then writes STATUS ``FINISHED_INCOMPLETE`` instead of ``FINISHED``.
"""

from __future__ import annotations

from typing import Any

from deb_bootc_compose.boot.runner import DEFAULT_TIMEOUT, BootTestSpec, boot_test
from deb_bootc_compose.phases.base import ImageRecord, Phase

INCOMPLETE_KEY = "incomplete"


def _boot_test_settings(manifest: Any) -> tuple[bool, list[str], float]:
    bt = getattr(manifest, "boot_test", None)
    if bt is None:
        return False, [], DEFAULT_TIMEOUT
    get = bt.get if isinstance(bt, dict) else lambda k, d=None: getattr(bt, k, d)
    return bool(get("enabled", False)), list(get("commands", []) or []), float(get("timeout", DEFAULT_TIMEOUT))


def mark_incomplete(ctx: Any, reason: str) -> None:
    ctx.extra.setdefault(INCOMPLETE_KEY, []).append(reason)


class BootTestPhase(Phase):
    name = "boot-test"

    def skip_reason(self) -> str | None:
        enabled, _, _ = _boot_test_settings(self.ctx.manifest)
        if not enabled:
            return "boot_test.enabled is false"
        outputs = list(getattr(self.ctx.manifest, "outputs", []) or [])
        if not {"raw", "qcow2"} & set(outputs):
            return "no disk image to boot (add raw or qcow2 to outputs)"
        return None

    @staticmethod
    def _image(images: list[ImageRecord]) -> ImageRecord | None:
        for fmt in ("qcow2", "raw"):
            for rec in images:
                if rec.format == fmt:
                    return rec
        return None

    def run(self) -> None:
        _, commands, timeout = _boot_test_settings(self.ctx.manifest)
        results = self.ctx.extra.setdefault("boot_test", {})
        for v in self.ctx.variants:
            self.check_cancelled()
            key = f"{v.variant}/{v.arch}"
            rec = self._image(v.images)
            if rec is None:
                mark_incomplete(self.ctx, f"boot-test {key}: no disk image was built")
                continue
            expected = None
            if v.lock is not None:
                expected = _packages_of(v.lock)
            spec = BootTestSpec(image=rec.path, log_dir=self.ctx.paths.logs, expected_commit=v.commit,
                                expected_packages=expected, commands=commands, timeout=timeout,
                                name=f"boot-test-{v.variant}-{v.arch}")
            self.progress(f"{key}: booting {rec.path.name} (serial log {spec.log_dir / (spec.name + '-serial.log')})")
            report = boot_test(spec)
            results[key] = report.to_json()
            self.progress(report.summary())
            if report.ok:
                self.progress(f"{key}: passed; shell after {report.boot_seconds}s under {report.accel}")
            else:
                failed = ", ".join(c.name for c in report.failures()) or report.error or "unknown"
                mark_incomplete(self.ctx, f"boot-test {key} failed: {failed} (see {report.serial_log})")


def _packages_of(lock: Any) -> dict[str, str] | None:
    """name -> version from a lockfile entry list (objects or dicts with name/version), if it has that shape."""
    items = lock if isinstance(lock, list) else getattr(lock, "packages", None)
    if not isinstance(items, list):
        return None
    out: dict[str, str] = {}
    for item in items:
        name = item.get("name") if isinstance(item, dict) else getattr(item, "name", None)
        version = item.get("version") if isinstance(item, dict) else getattr(item, "version", None)
        if isinstance(name, str) and isinstance(version, str):
            out[name] = version
    return out or None
