"""The oci phase: images per variant, labels from the manifest, the layer plan kept between composes."""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
from composefixtures import make_context

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.oci import OSTREE_COMMIT_LABEL, OciResult
from deb_bootc_compose.oci.plan import LayerPlan
from deb_bootc_compose.phases.oci import PLAN_NAME, OciPhase, remember_plans


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
        assert result.plan_path == ctx.paths.oci_dir(vs.variant, "amd64") / "layer-plan.json"
    # the target keeps a plan only once the compose FINISHED (the compose calls remember_plans then)
    assert not (tmp_path / "target/.state/oci-plans").exists()
    remember_plans(ctx)
    for vs in ctx.variants:
        plan = ctx.target.state.joinpath("oci-plans", f"debian-bootc-{vs.variant}.amd64.json")
        assert plan.read_bytes() == (ctx.paths.oci_dir(vs.variant, "amd64") / "layer-plan.json").read_bytes()


def test_next_compose_keeps_layers(tmp_path: Path) -> None:
    """An upgrade of a package both variants hold changes its (shared) layer only, in both images."""
    first = make_context(tmp_path)
    OciPhase(first).run()
    remember_plans(first)
    second = make_context(tmp_path, compose_id="debian-bootc-13-20261122.t.1")
    for vs in second.variants:
        assert vs.tree is not None
        (vs.tree / "usr/bin/hello").write_bytes(b"hello 2.10-4\n")
    OciPhase(second).run()
    for before, after in zip(first.variants, second.variants, strict=True):
        a, b = before.oci, after.oci
        assert a is not None and b is not None
        changed = [x.id for x, y in zip(a.layers, b.layers, strict=True) if x.digest != y.digest]
        assert len(changed) == 1 and "hello" in next(x for x in b.layers if x.id == changed[0]).packages
    # the two variants' trees are the same here: every layer is shared, the images differ only in labels
    base, kde = (vs.oci for vs in second.variants)
    assert base is not None and kde is not None
    assert [x.digest for x in base.layers] == [x.digest for x in kde.layers]


def test_one_variant_changing_a_package_file(tmp_path: Path) -> None:
    """A file one variant changed leaves its package's shared layer in both images (to each image's last
    layer); the package's other files stay shared."""
    ctx = make_context(tmp_path)
    kde = ctx.variants[1].tree
    assert kde is not None
    (kde / "usr/bin/hello").write_bytes(b"hello, kde\n")
    OciPhase(ctx).run()
    images = [vs.oci for vs in ctx.variants if vs.oci is not None]
    assert len(images) == 2
    for result in images:
        hello = next(x for x in result.layers if "hello" in x.packages)
        assert "usr/bin/hello" not in layer_paths(result, hello.digest)
        assert "usr/lib/sysimage/dpkg/info/hello.list" in layer_paths(result, hello.digest)
        assert "usr/bin/hello" in layer_paths(result, result.layers[-1].digest)
    assert [x.digest for x in images[0].layers[:-1]] == [x.digest for x in images[1].layers[:-1]]
    assert images[0].layers[-1].digest != images[1].layers[-1].digest


def test_a_directory_with_other_metadata(tmp_path: Path) -> None:
    """A directory whose mode differs between the variants: the layers but the last are still the same blobs,
    each image's last layer has the directory as its tree has it."""
    ctx = make_context(tmp_path)
    kde = ctx.variants[1].tree
    assert kde is not None
    os.chmod(kde / "usr/share/doc/bash", 0o750)
    OciPhase(ctx).run()
    images = [vs.oci for vs in ctx.variants if vs.oci is not None]
    assert len(images) == 2
    assert [x.digest for x in images[0].layers[:-1]] == [x.digest for x in images[1].layers[:-1]]
    bash = next(x for x in images[1].layers if "bash" in x.packages)
    assert layer_modes(images[1], bash.digest)["usr/share/doc/bash"] == 0o755  # as the first variant has it
    for result, mode in zip(images, (0o755, 0o750), strict=True):
        assert layer_modes(result, result.layers[-1].digest)["usr/share/doc/bash"] == mode


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


def layer_paths(result: OciResult, digest: str) -> set[str]:
    blob = result.layout_dir / "blobs/sha256" / digest.split(":")[1]
    with tarfile.open(blob) as tar:
        return {m.name.rstrip("/") for m in tar.getmembers()}


def layer_modes(result: OciResult, digest: str) -> dict[str, int]:
    blob = result.layout_dir / "blobs/sha256" / digest.split(":")[1]
    with tarfile.open(blob) as tar:
        return {m.name.rstrip("/"): m.mode for m in tar.getmembers()}


def shuffled_plan(path: Path) -> LayerPlan:
    """A valid plan no fresh planning would make: the last package of the first layer moved to the last layer."""
    plan = LayerPlan.load(path)
    assert len(plan.layers) >= 2 and len(plan.layers[0].packages) >= 1
    moved = plan.layers[0].packages.pop()
    plan.layers[-1].packages.append(moved)
    plan.layers = [layer for layer in plan.layers if layer.packages]
    plan.save(path)
    return plan


def test_plan_comes_from_the_last_finished_compose(tmp_path: Path) -> None:
    """A compose that did not finish (no remember_plans) never decides the next compose's layers."""
    first = make_context(tmp_path)
    OciPhase(first).run()
    remember_plans(first)
    kept = first.target.state / "oci-plans" / "debian-bootc-base.amd64.json"
    shuffled = shuffled_plan(kept).layer_of()
    doomed = make_context(tmp_path, compose_id="debian-bootc-13-20261122.t.1")
    OciPhase(doomed).run()  # starts from the kept plan, but is never remembered
    third = make_context(tmp_path, compose_id="debian-bootc-13-20261122.t.2")
    shuffled_plan(doomed.paths.oci_dir("base", "amd64") / PLAN_NAME)  # what the doomed compose left differs
    OciPhase(third).run()
    assert LayerPlan.load(third.paths.oci_dir("base", "amd64") / PLAN_NAME).layer_of() == shuffled
    log = (third.paths.logs / "oci.log").read_text()
    assert "with the layer plan of the last finished compose" in log


def test_lockfile_of_a_compose_brings_its_plan_to_a_fresh_target(tmp_path: Path) -> None:
    """--lockfile DIR/metadata/lockfile.yaml into a target without plans: DIR's own plan, the same digest."""
    for d in "abc":
        (tmp_path / d).mkdir()
    first = make_context(tmp_path / "a")
    OciPhase(first).run()
    shuffled = shuffled_plan(first.paths.oci_dir("base", "amd64") / PLAN_NAME).layer_of()
    remember_plans(first)
    OciPhase(first).write(first.variants[0])  # the image cut with that (unusual) plan: our reference
    assert LayerPlan.load(first.paths.oci_dir("base", "amd64") / PLAN_NAME).layer_of() == shuffled
    reference = first.variants[0].oci.manifest_digest
    fresh = make_context(tmp_path / "b")
    OciPhase(fresh).write(fresh.variants[0])
    assert fresh.variants[0].oci.manifest_digest != reference  # a fresh plan gives another split
    again = make_context(tmp_path / "c")
    again.lockfile_in = first.paths.lockfile
    OciPhase(again).write(again.variants[0])
    assert again.variants[0].oci.manifest_digest == reference
    assert LayerPlan.load(again.paths.oci_dir("base", "amd64") / PLAN_NAME).layer_of() == shuffled
    assert "the layer plan of the lockfile's compose" in (again.paths.logs / "oci.log").read_text()
