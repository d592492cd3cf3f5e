"""The layer plan: sizes in, a stable package → layer assignment out."""

from __future__ import annotations

from pathlib import Path

import pytest

from deb_bootc_compose.oci.plan import LayerPlan, PlanError, PlannedLayer, make_plan


def sizes_for(n: int, big: dict[str, int] | None = None) -> dict[str, int]:
    sizes = {f"small{i:03d}": 1000 + i for i in range(n)}
    sizes.update(big or {})
    return sizes


def test_fresh_plan_big_alone_small_packed() -> None:
    sizes = sizes_for(200, {"linux-firmware": 10_000_000, "libllvm": 5_000_000})
    plan = make_plan(sizes, 10)
    assert len(plan.layers) == 10
    assert plan.layers[0].packages == ["linux-firmware"]
    assert plan.layers[1].packages == ["libllvm"]
    packed = plan.layers[2:]
    assert sum(len(x.packages) for x in packed) == 200
    assert max(x.size for x in packed) - min(x.size for x in packed) < 2000  # balanced
    assert sorted(p for x in plan.layers for p in x.packages) == sorted(sizes)


def test_fewer_packages_than_budget_each_alone() -> None:
    plan = make_plan({"a": 1, "b": 2, "c": 3}, 64)
    assert [x.packages for x in plan.layers] == [["c"], ["b"], ["a"]]


def test_previous_plan_keeps_assignment() -> None:
    sizes = sizes_for(100, {"big": 1_000_000})
    first = make_plan(sizes, 8)
    changed = dict(sizes)
    changed["small050"] = 50_000  # grew a lot: still stays where it was
    del changed["small010"]
    changed["newbig"] = 900_000
    changed["newsmall1"] = 10
    changed["newsmall2"] = 20
    second = make_plan(changed, 10, first)
    before = first.layer_of()
    after = second.layer_of()
    for pkg in changed:
        if pkg in before:
            assert after[pkg] == before[pkg], pkg
    assert "small010" not in after
    new_layers = {x.id for x in second.layers} - {x.id for x in first.layers}
    assert len(new_layers) == 2
    assert {after["newbig"]} | {after["newsmall1"]} == new_layers
    assert after["newsmall1"] == after["newsmall2"]


def test_previous_plan_full_budget_goes_to_smallest_layer() -> None:
    sizes = {"a": 100, "b": 50, "c": 10}
    first = make_plan(sizes, 3)
    second = make_plan({**sizes, "d": 1}, 3, first)
    assert len(second.layers) == 3
    assert second.layer_of()["d"] == first.layer_of()["c"]


def test_budget_shrinks_merges_smallest() -> None:
    sizes = {f"p{i}": 10 * (i + 1) for i in range(6)}
    first = make_plan(sizes, 6)
    second = make_plan(sizes, 4, first)
    assert len(second.layers) == 4
    assert sorted(p for x in second.layers for p in x.packages) == sorted(sizes)
    assert second.layer_of()["p5"] == first.layer_of()["p5"]  # the biggest are untouched


def test_layers_emptied_are_dropped_and_ids_not_reused() -> None:
    first = make_plan({"a": 100, "b": 10}, 4)
    second = make_plan({"a": 100, "c": 10}, 4, first)
    assert first.layer_of()["b"] not in {x.id for x in second.layers}
    assert second.layer_of()["c"] not in {x.id for x in first.layers}


def test_save_load_roundtrip_and_errors(tmp_path: Path) -> None:
    plan = LayerPlan([PlannedLayer("p0001", ["a", "b"], 3)], budget=5)
    path = tmp_path / "plan.json"
    plan.save(path)
    loaded = LayerPlan.load(path)
    assert loaded.layer_of() == {"a": "p0001", "b": "p0001"} and loaded.budget == 5
    with pytest.raises(PlanError, match="does not exist"):
        LayerPlan.load(tmp_path / "nope.json")
    path.write_text('{"format": "deb-bootc-compose.oci-layer-plan", "version": 99}')
    with pytest.raises(PlanError, match="version 99 is not supported"):
        LayerPlan.load(path)
    path.write_text('{"format": "deb-bootc-compose.oci-layer-plan", "version": 1, "layers": [{"id": 3}]}')
    with pytest.raises(PlanError, match=r"layers\[0\] needs a string"):
        LayerPlan.load(path)
    path.write_text(
        '{"format": "deb-bootc-compose.oci-layer-plan", "version": 1,'
        ' "layers": [{"id": "p1", "packages": []}, {"id": "p1", "packages": []}]}'
    )
    with pytest.raises(PlanError, match="appears twice"):
        LayerPlan.load(path)
    with pytest.raises(PlanError, match="at least one package layer"):
        make_plan({"a": 1}, 0)
