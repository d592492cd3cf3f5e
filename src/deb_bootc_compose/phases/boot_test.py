"""Phase ``boot-test``: boot each variant's disk image in QEMU and check it (``boot_test: {enabled: true}``).

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
        if not self.ctx.manifest.boot_test.enabled:
            return "boot_test.enabled is false"
        if "disk" in self.ctx.skipped:
            return f"no disk image to boot: the disk phase is skipped ({self.ctx.skipped['disk']})"
        if not {"raw", "qcow2"} & set(self.ctx.manifest.outputs):
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
        commands, timeout = list(self.ctx.manifest.boot_test.commands), float(self.ctx.manifest.boot_test.timeout)
        results = self.ctx.boot_test
        for v in self.ctx.variants:
            self.check_cancelled()
            key = f"{v.variant}/{v.arch}"
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

