"""The compose-wide layer plan (pure logic) and the check of what may be shared (synthetic trees)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from synthetic import KVER, SDE, add_package, make_tree

from deb_bootc_compose.oci.analysis import UNOWNED, analyze_tree
from deb_bootc_compose.oci.composeplan import make_compose_plan, merge_plans
from deb_bootc_compose.oci.plan import LayerPlan, PlanError, PlannedLayer, make_plan
from deb_bootc_compose.oci.sharing import separate_differences

COMMON = {f"lib{i:02d}": 1000 * (i + 1) for i in range(30)}


def packages(plan: LayerPlan) -> list[list[str]]:
    return [x.packages for x in plan.layers]


def test_shared_packages_get_the_same_layers_in_every_variant() -> None:
    sizes = {"a": {**COMMON, "only-a": 50_000}, "b": {**COMMON, "only-b": 10, "also-b": 20}}
    plans = make_compose_plan(sizes, {"a": 10, "b": 10})
    a, b = plans["a"], plans["b"]
    shared_a = [x for x in a.layers if x.variants == ["a", "b"]]
    shared_b = [x for x in b.layers if x.variants == ["a", "b"]]
    assert [(x.id, x.packages) for x in shared_a] == [(x.id, x.packages) for x in shared_b]
    assert sorted(p for x in shared_a for p in x.packages) == sorted(COMMON)
    # each variant's own packages in its own layers, after the shared ones
    assert a.layers[: len(shared_a)] == shared_a and b.layers[: len(shared_b)] == shared_b
    assert [x.packages for x in a.layers[len(shared_a):]] == [["only-a"]]
    assert sorted(p for x in b.layers[len(shared_b):] for p in x.packages) == ["also-b", "only-b"]
    assert all(x.variants == ["b"] for x in b.layers[len(shared_b):])
    assert len(a.layers) <= 10 and len(b.layers) <= 10
    ids = [x.id for x in a.layers] + [x.id for x in b.layers[len(shared_b):]]
    assert len(ids) == len(set(ids))  # one id, one layer, across the compose
    assert a.variants == b.variants == ["a", "b"]


def test_one_variant_is_the_single_image_plan() -> None:
    sizes = {**COMMON, "big": 10_000_000}
    previous = make_plan({"big": 5, "lib01": 3, "gone": 1}, 4)
    for prev in (None, previous):
        alone = make_plan(sizes, 8, prev)
        [plan] = make_compose_plan({"v": sizes}, {"v": 8}, prev).values()
        assert [(x.id, x.packages) for x in plan.layers] == [(x.id, x.packages) for x in alone.layers]


def test_three_variants_bigger_classes_first() -> None:
    sizes = {"base": {"core": 100}, "host": {"core": 100, "podman": 50, "netavark": 5},
             "cloud": {"core": 100, "netavark": 5, "cloud-init": 30}}
    plans = make_compose_plan(sizes, {v: 5 for v in sizes})
    assert [x.variants for x in plans["host"].layers] == [["base", "host", "cloud"], ["host", "cloud"], ["host"]]
    assert packages(plans["host"]) == [["core"], ["netavark"], ["podman"]]
    assert packages(plans["cloud"]) == [["core"], ["netavark"], ["cloud-init"]]
    assert plans["host"].layers[1].id == plans["cloud"].layers[1].id
    assert packages(plans["base"]) == [["core"]]


def test_budget_per_variant_and_shared_classes_given_up() -> None:
    # b is in four classes ({a,b,c}, {a,b}, {b,c}, {b}) but may have three layers: the smallest shared class
    # ({b,c}: 10 bytes) is given up, its package goes to b's and c's own layers
    sizes = {"a": {"x": 1000, "ab": 500}, "b": {"x": 1000, "ab": 500, "bc": 10, "own": 1},
             "c": {"x": 1000, "bc": 10}}
    plans = make_compose_plan(sizes, {"a": 3, "b": 3, "c": 3})
    assert all(len(p.layers) <= 3 for p in plans.values())
    assert [x.variants for x in plans["b"].layers] == [["a", "b", "c"], ["a", "b"], ["b"]]
    assert sorted(plans["b"].layers[-1].packages) == ["bc", "own"]
    assert packages(plans["c"]) == [["x"], ["bc"]]
    with pytest.raises(PlanError, match="variant a: at least one package layer"):
        make_compose_plan({"a": {"x": 1}}, {"a": 0})


def test_previous_plan_keeps_layers_and_split_layers_get_new_ids() -> None:
    first = make_compose_plan({"a": {**COMMON, "mine": 7}, "b": dict(COMMON)}, {"a": 6, "b": 6})
    previous = merge_plans([first["a"], first["b"]])
    assert previous is not None and [x.id for x in previous.layers] == [x.id for x in first["a"].layers]
    # lib00 is now only in a: it keeps its layer id in a's own layers, the rest of that old layer (shared)
    # gets a new id
    old_id = first["a"].layer_of()["lib00"]
    second_sizes = {"a": {**COMMON, "mine": 7}, "b": {k: v for k, v in COMMON.items() if k != "lib00"}}
    second = make_compose_plan(second_sizes, {"a": 6, "b": 6}, previous)
    kept = {p: i for p, i in first["b"].layer_of().items() if p != "lib00"}
    moved_mates = {p for p, i in kept.items() if i == old_id}
    for pkg, layer in kept.items():
        if pkg not in moved_mates:
            assert second["b"].layer_of()[pkg] == layer, pkg
    ids = [x.id for x in second["a"].layers]
    assert len(ids) == len(set(ids))
    assert second["a"].layer_of()["lib00"] in {old_id} | {x.id for x in second["a"].layers if x.variants == ["a"]}
    assert merge_plans([]) is None
    assert merge_plans([LayerPlan([PlannedLayer("p0001", ["x"])]), LayerPlan([PlannedLayer("p0001", ["y"])])]
                       ).layers[0].packages == ["x"]  # type: ignore[union-attr]


def trees(tmp_path: Path) -> tuple[Path, Path]:
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b")
    add_package(b, "tree", {"usr/bin/tree": b"tree" * 100})
    (b / "usr/share/doc/bash/copyright").write_bytes(b"rewritten by a script\n")  # content differs
    os.chmod(b / "usr/bin/bash", 0o700)  # metadata differs
    os.link(b / "usr/bin/hello", b / "usr/bin/hello-again")  # a hardlink group only b has
    for tree in (a, b):
        for path in (tree / "usr/bin/perl", tree / "usr/bin/perl5.40.0"):
            os.utime(path, (SDE - 100, SDE - 100))
    return a, b


def test_differences_leave_the_shared_layers(tmp_path: Path) -> None:
    a, b = trees(tmp_path)
    analyses = {"a": analyze_tree(a, KVER), "b": analyze_tree(b, KVER)}
    moved = separate_differences(analyses, SDE)
    differ = {"usr/share/doc/bash/copyright", "usr/bin/bash", "usr/bin/hello", "usr/bin/hello-again"}
    assert moved["b"] == differ
    assert moved["a"] == differ - {"usr/bin/hello-again"}  # a has no such path (nothing to move)
    for analysis in analyses.values():
        assert all(analysis.units[p] == UNOWNED for p in differ if p in analysis.units)
    # the same elsewhere: the package's other files, the kernel's, b's own package, a shared hardlink group
    assert analyses["a"].units["usr/share/doc/bash"] == analyses["b"].units["usr/share/doc/bash"] == "bash"
    assert analyses["b"].units["usr/bin/tree"] == "tree"
    assert analyses["a"].units[f"usr/lib/modules/{KVER}/vmlinuz"] == "kernel"
    assert analyses["b"].units["usr/bin/perl5.40.0"] == "perl-base"


def test_a_directory_with_other_metadata_keeps_what_is_below_it(tmp_path: Path) -> None:
    """A directory is a directory in both trees, only its mode differs: nothing moves; every layer but the last
    writes it as the first tree has it, each image's last layer as the image has it."""
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b")
    os.chmod(b / "usr/share/doc/bash", 0o750)
    analyses = {"a": analyze_tree(a, KVER), "b": analyze_tree(b, KVER)}
    moved = separate_differences(analyses, SDE)
    assert moved == {"a": set(), "b": set()}
    for analysis in analyses.values():
        assert analysis.restate == {"usr/share/doc/bash"}
        source_tree, entry = analysis.dir_sources["usr/share/doc/bash"]
        assert source_tree == a and entry.st.st_mode & 0o777 == 0o755
    # a directory in one tree, a symlink in the other: what is below it cannot be shared
    c, d = make_tree(tmp_path / "c"), make_tree(tmp_path / "d")
    (d / "usr/share/doc/bash/copyright").unlink()
    (d / "usr/share/doc/bash").rmdir()
    os.symlink("bash-doc", d / "usr/share/doc/bash")
    analyses = {"c": analyze_tree(c, KVER), "d": analyze_tree(d, KVER)}
    moved = separate_differences(analyses, SDE)
    assert moved["c"] == {"usr/share/doc/bash", "usr/share/doc/bash/copyright"}
    assert moved["d"] == {"usr/share/doc/bash"}
    assert analyses["c"].restate == set()
