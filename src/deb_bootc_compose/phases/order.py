"""The phases of a compose, in the order they run, and the choice of which to leave out.

Adding a phase is adding its module under :mod:`deb_bootc_compose.phases` and one line in :data:`PHASES`.
A phase whose class says ``skippable = True`` may be left out with ``--skip-phase NAME`` or by naming the
others with ``--just-phase NAME``; the compose still ends FINISHED (its outputs are then not expected).
"""

from __future__ import annotations

from collections.abc import Iterable

from deb_bootc_compose.errors import PhaseSelectionError
from deb_bootc_compose.phases.base import Phase
from deb_bootc_compose.phases.boot_test import BootTestPhase
from deb_bootc_compose.phases.build import BuildPhase
from deb_bootc_compose.phases.checksums import ChecksumsPhase
from deb_bootc_compose.phases.disk import DiskPhase
from deb_bootc_compose.phases.gather import GatherPhase
from deb_bootc_compose.phases.init import InitPhase
from deb_bootc_compose.phases.metadata import MetadataPhase
from deb_bootc_compose.phases.oci import OciPhase
from deb_bootc_compose.phases.ostree_commit import OstreeCommitPhase
from deb_bootc_compose.phases.ostree_prepare import OstreePreparePhase
from deb_bootc_compose.phases.rootfs import RootfsPhase

PHASES: list[type[Phase]] = [
    InitPhase,  # init: the compose directory, STATUS STARTED, the variant list
    BuildPhase,  # build: the orchestrator builds the manifest's build.sources
    GatherPhase,  # gather: resolve, fill the pool, write the lockfile
    RootfsPhase,  # rootfs: mmdebstrap installs exactly the locked packages
    OstreePreparePhase,  # ostree-prepare: the tree made OSTree-ready (the steps of deb_bootc_compose.prepare)
    OstreeCommitPhase,  # ostree-commit: the commit in TARGET/ostree/repo
    OciPhase,  # oci: the bootc OCI image (layout + archive)
    DiskPhase,  # disk: raw/qcow2 disk images from the commit
    BootTestPhase,  # boot-test: boot the disk image in QEMU and check it
    ChecksumsPhase,  # checksums: SHA256 of every deliverable, CHECKSUM files
    MetadataPhase,  # metadata: composeinfo.json, images.json, packages.json, ostree.json
]
NAMES = [p.name for p in PHASES]
# the phases that run after gather when a no-op recompose reuses the deliverables of the last one
REUSE_PHASES = frozenset({"checksums", "metadata"})
# which phase makes each manifest output: an output of a skipped phase is not expected of a FINISHED compose
OUTPUT_PHASE = {"oci": OciPhase.name, "raw": DiskPhase.name, "qcow2": DiskPhase.name}


def _names(values: Iterable[str], option: str) -> list[str]:
    """Phase names from repeated options, each of which may be a comma-separated list."""
    out: list[str] = []
    for value in values:
        for name in (n.strip() for n in value.split(",")):
            if name not in NAMES:
                raise PhaseSelectionError(f"{option} {name or repr(value)}: no such phase (the phases, in order: "
                                          f"{', '.join(NAMES)})")
            if name not in out:
                out.append(name)
    return out


def skippable() -> list[str]:
    return [p.name for p in PHASES if p.skippable]


def select_skipped(skip: Iterable[str] = (), just: Iterable[str] = ()) -> dict[str, str]:
    """The phases ``--skip-phase`` and ``--just-phase`` leave out, in phase order: name -> why.

    ``--just-phase`` runs the named phases and every phase that cannot be skipped; ``--skip-phase`` wins
    where both name a phase. Naming a phase that cannot be skipped in ``--skip-phase`` is an error."""
    by_name = {p.name: p for p in PHASES}
    skipped: dict[str, str] = {}
    for name in _names(skip, "--skip-phase"):
        phase = by_name[name]
        if not phase.skippable:
            raise PhaseSelectionError(f"--skip-phase {name}: the {name} phase cannot be skipped: "
                                      f"{phase.needed_because} (phases that can be skipped: {', '.join(skippable())})")
        skipped[name] = "--skip-phase"
    just_names = _names(just, "--just-phase")
    if just_names:
        for phase in PHASES:
            if phase.skippable and phase.name not in just_names:
                skipped.setdefault(phase.name, f"--just-phase {','.join(just_names)}")
    return {name: skipped[name] for name in NAMES if name in skipped}
