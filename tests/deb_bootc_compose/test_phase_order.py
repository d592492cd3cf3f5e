"""The phase list, --skip-phase/--just-phase (what may be left out, the usage errors) and what a FINISHED
compose needs when phases were left out (pure logic on a synthetic compose context; the real compose with
skipped phases is in test_compose_integration.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from composefixtures import make_context

from deb_bootc_compose.cli import main as cli_main
from deb_bootc_compose.compose import missing_deliverables, reuse_key
from deb_bootc_compose.errors import PhaseSelectionError
from deb_bootc_compose.phases.boot_test import BootTestPhase
from deb_bootc_compose.phases.order import NAMES, PHASES, select_skipped, skippable

DOCUMENTED = ["init", "build", "gather", "rootfs", "ostree-prepare", "ostree-commit", "oci", "disk", "boot-test",
              "checksums", "metadata"]


def test_phase_names_and_order_are_the_documented_ones() -> None:
    assert NAMES == DOCUMENTED
    assert skippable() == ["build", "oci", "disk", "boot-test"]
    # a phase that cannot be skipped says why (shown to whoever asks to skip it)
    assert all(p.needed_because for p in PHASES if not p.skippable)
    doc = (Path(__file__).parents[2] / "docs" / "compose.md").read_text()
    assert ", ".join(DOCUMENTED) in doc


def test_skip_and_just_phase_selection() -> None:
    assert select_skipped() == {}
    both = {"disk": "--skip-phase", "boot-test": "--skip-phase"}
    assert select_skipped(["boot-test,disk"]) == both  # in phase order, whatever the order given
    assert select_skipped(["disk", "boot-test", "disk"]) == both
    assert select_skipped(just=["oci"]) == {n: "--just-phase oci" for n in ("build", "disk", "boot-test")}
    # naming a phase that always runs in --just-phase is harmless; --skip-phase wins over --just-phase
    assert select_skipped(["oci"], ["gather", "oci,disk"]) == {
        "build": "--just-phase gather,oci,disk", "oci": "--skip-phase", "boot-test": "--just-phase gather,oci,disk"}


@pytest.mark.parametrize(("skip", "just", "message"), [
    (["dsik"], [], "--skip-phase dsik: no such phase (the phases, in order: init, build, gather"),
    ([], ["disk,"], "--just-phase 'disk,': no such phase"),
    (["gather"], [], "--skip-phase gather: the gather phase cannot be skipped: every later phase works from "
                     "the lockfile it writes (phases that can be skipped: build, oci, disk, boot-test)"),
    (["disk,metadata"], [], "the metadata phase cannot be skipped"),
])
def test_bad_phase_names_are_usage_errors(skip: list[str], just: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PhaseSelectionError, match=re.escape(message)):
        select_skipped(skip, just)
    argv = ["--config", str(tmp_path / "m.yaml"), "--target-dir", str(tmp_path / "t")]
    argv += [a for s in skip for a in ("--skip-phase", s)] + [a for j in just for a in ("--just-phase", j)]
    assert cli_main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "t").exists()  # nothing created


def test_outputs_of_skipped_phases_are_not_expected(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)  # outputs [oci], every variant committed, no image made
    assert missing_deliverables(ctx) == [f"{v}/amd64: no oci deliverable was produced" for v in ("base", "kde-desktop")]
    ctx.skipped = {"oci": "--skip-phase"}
    assert missing_deliverables(ctx) == []
    ctx.variants[0].commit = None  # the commit is always needed
    assert missing_deliverables(ctx) == ["base/amd64: no OSTree commit"]


def test_reuse_key_tells_composes_without_deliverables_apart(tmp_path: Path) -> None:
    manifest = make_context(tmp_path).manifest
    manifest.outputs = ["oci", "qcow2"]
    assert reuse_key("h", manifest, []) == "h"
    assert reuse_key("h", manifest, ["build", "boot-test"]) == "h"  # no deliverable is missing
    assert reuse_key("h", manifest, ["disk"]) != "h"
    assert reuse_key("h", manifest, ["disk"]) != reuse_key("h", manifest, ["oci"])


def test_boot_test_is_not_needed_when_the_disk_phase_is_skipped(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    ctx.manifest.boot_test.enabled = True
    ctx.manifest.outputs = ["oci", "qcow2"]
    assert BootTestPhase(ctx).skip_reason() is None
    ctx.skipped = {"disk": "--skip-phase"}
    assert BootTestPhase(ctx).skip_reason() == "no disk image to boot: the disk phase is skipped (--skip-phase)"
