"""Phase ``boot-test``: boot each variant's disk image in QEMU and check it (``boot_test: {enabled: true}``, the
manifest's or the variant's own; a variant without a disk image in its outputs is not booted).

A failing boot test does not abort the compose: the report goes to ``logs/boot-test-<variant>-<arch>.json``
with the full serial log beside it, and the reason is appended to ``ctx.incomplete`` — the
compose runner then writes STATUS ``FINISHED_INCOMPLETE`` instead of ``FINISHED``.
"""

from __future__ import annotations

from deb_bootc_compose.boot.runner import BootTestSpec, boot_test
from deb_bootc_compose.phases.base import ImageRecord, Phase


class BootTestPhase(Phase):
    name = "boot-test"
    skippable = True

    def skip_reason(self) -> str | None:
        m = self.ctx.manifest
        settings = [m.for_variant(v) for v in m.variants]
        if not any(s.boot_test.enabled for s in settings):
            return "boot_test.enabled is false"
        if "disk" in self.ctx.skipped:
            return f"no disk image to boot: the disk phase is skipped ({self.ctx.skipped['disk']})"
        if not any(s.boots for s in settings):
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
        results = self.ctx.boot_test
        for v in self.ctx.variants:
            self.check_cancelled()
            key = f"{v.variant}/{v.arch}"
            settings = self.ctx.manifest.for_variant(v.variant)
            if not settings.boots:
                why = "boot_test.enabled is false" if not settings.boot_test.enabled else "no disk image in its outputs"
                self.progress(f"{key}: not booted ({why})")
                continue
            commands, timeout = list(settings.boot_test.commands), float(settings.boot_test.timeout)
            rec = self._image(v.images)
            if rec is None:
                self.ctx.incomplete.append(f"boot-test {key}: no disk image was built")
                continue
            expected = ({p.name: p.version for p in v.lock.packages} or None) if v.lock is not None else None
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
                self.ctx.incomplete.append(f"boot-test {key} failed: {failed} (see {report.serial_log})")

