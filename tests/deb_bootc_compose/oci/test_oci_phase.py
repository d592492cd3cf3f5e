"""The oci phase: images per variant, labels from the manifest, the layer plan kept between composes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
from composefixtures import make_context

from deb_bootc_compose.oci import OSTREE_COMMIT_LABEL, OciResult
from deb_bootc_compose.phases.base import ComposeError
from deb_bootc_compose.phases.oci import OciPhase


def config_of(result: OciResult) -> dict[str, object]:
    blob = result.layout_dir / "blobs/sha256" / result.config_digest.split(":")[1]
    data: dict[str, object] = json.loads(blob.read_text())
    return data


def test_oci_phase_writes_every_variant(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    OciPhase(ctx).run()
    for vs in ctx.variants:
        result = vs.oci
        assert isinstance(result, OciResult)
        assert result.layout_dir == ctx.paths.oci_dir(vs.variant, "amd64") / "layout"
        assert result.archive_path.name == f"debian-bootc-{vs.variant}-13.amd64.oci-archive"
        assert len(result.layers) <= 10  # the manifest's oci.max_layers
        [record] = vs.images
        assert (record.type, record.format, record.path) == ("bootable-container", "ociarchive", result.archive_path)
        assert record.extra["manifest_digest"] == result.manifest_digest
        assert record.extra["layout"] == f"compose/{vs.variant}/amd64/oci/layout"
        labels = config_of(result)["config"]["Labels"]  # type: ignore[index]
        assert labels["org.opencontainers.image.vendor"] == "Example"
        assert labels["org.opencontainers.image.title"] == "debian-bootc"
        assert labels["org.opencontainers.image.version"] == "13"
        assert labels["org.debian.bootc.variant"] == vs.variant
        assert labels[OSTREE_COMMIT_LABEL] == "ab" * 32
        assert "ostree.commit" not in labels
        plan = ctx.target.state.joinpath("oci-plans", f"debian-bootc-{vs.variant}.amd64.json")
        assert plan.read_bytes() == (ctx.paths.oci_dir(vs.variant, "amd64") / "layer-plan.json").read_bytes()
    assert (tmp_path / "target/.state/oci-plans").is_dir()


def test_next_compose_keeps_layers(tmp_path: Path) -> None:
    first = make_context(tmp_path)
    OciPhase(first).run()
    second = make_context(tmp_path, compose_id="debian-bootc-13-20261122.t.1")
    tree = second.variants[0].tree
    assert tree is not None
    (tree / "usr/bin/hello").write_bytes(b"hello 2.10-4\n")
    OciPhase(second).run()
    a, b = first.variants[0].oci, second.variants[0].oci
    changed = [x.id for x, y in zip(a.layers, b.layers, strict=True) if x.digest != y.digest]
    assert len(changed) == 1 and "hello" in next(x for x in b.layers if x.id == changed[0]).packages
    # the other variant did not change at all: same digest in a different compose
    assert first.variants[1].oci.manifest_digest == second.variants[1].oci.manifest_digest


def test_oci_phase_errors(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    ctx.source_date_epoch = None
    with pytest.raises(ComposeError, match="no SOURCE_DATE_EPOCH"):
        OciPhase(ctx).run()
    ctx = make_context(tmp_path)
    ctx.variants[0].tree = tmp_path / "missing"
    with pytest.raises(ComposeError, match="base/amd64: no prepared tree"):
        OciPhase(ctx).run()
    ctx = make_context(tmp_path)
    ctx.manifest.oci.labels["ostree.commit"] = "x"
    with pytest.raises(ComposeError, match=r"base/amd64: OCI image: label 'ostree\.commit' must not be set"):
        OciPhase(ctx).run()
    ctx = make_context(tmp_path)
    ctx.variants[0].kernel_version = "7.0.0-9-amd64"
    with pytest.raises(ComposeError, match=r"7\.0\.0-9-amd64 is not a directory"):
        OciPhase(ctx).run()


def test_oci_phase_cancelled(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    ctx.cancel.set()
    with pytest.raises(KeyboardInterrupt, match="interrupted during oci"):
        OciPhase(ctx).write(ctx.variants[0])
    assert not ctx.paths.oci_dir("base", "amd64").joinpath("layout").exists()
