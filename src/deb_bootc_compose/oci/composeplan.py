"""The layer plan of a whole compose: packages shared by several variants get the same layers in each.

A package's *class* is the set of variants whose trees hold it (after :mod:`.sharing` moved every path that
differs between them out of its layer). Each class gets its own package layers, planned by
:func:`~deb_bootc_compose.oci.plan.make_plan` from the class's packages alone, so a layer of the class
``{a, b}`` has the same packages, in the same order, with the same files in both images: the same tar, the
same digest, stored once by a registry. Layers of bigger classes come first (the layers every variant
holds, then those of two or more, then each variant's own). Every image stays within its budget: the
budget of a variant is shared among the classes it is in, in proportion to their bytes and at least one
layer each; when a variant is in more classes than its budget allows, the smallest shared classes are
given up (their packages go to each variant's own layers: correct, only not shared).

One variant: one class, the plan :func:`make_plan` makes alone (the same image as a single-image plan).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from deb_bootc_compose.oci.plan import LayerPlan, PlanError, PlannedLayer, make_plan

Class = tuple[str, ...]


def merge_plans(plans: Sequence[LayerPlan]) -> LayerPlan | None:
    """One previous plan from the variants' previous plans: every layer once (the first plan's wins)."""
    layers: list[PlannedLayer] = []
    seen: set[str] = set()
    for plan in plans:
        for layer in plan.layers:
            if layer.id not in seen:
                seen.add(layer.id)
                layers.append(PlannedLayer(layer.id, list(layer.packages), layer.size, list(layer.variants)))
    return LayerPlan(layers=layers) if layers else None


def package_classes(sizes: Mapping[str, Mapping[str, int]]) -> dict[Class, dict[str, int]]:
    """Class (variants holding the package, in the compose's order) → that class's packages and bytes."""
    names = list(sizes)
    classes: dict[Class, dict[str, int]] = {}
    for pkg in sorted({p for s in sizes.values() for p in s}, key=os.fsencode):
        cls = tuple(v for v in names if pkg in sizes[v])
        classes.setdefault(cls, {})[pkg] = max(sizes[v][pkg] for v in cls)
    return classes


def _give_up_shared(classes: dict[Class, dict[str, int]], budgets: Mapping[str, int]) -> None:
    """While a variant is in more classes than its budget, move the smallest shared class containing it to
    its variants' own classes."""
    while True:
        crowded = next((v for v, b in budgets.items() if sum(v in c for c in classes) > b), None)
        if crowded is None:
            return
        shared = [c for c in classes if crowded in c and len(c) > 1]
        if not shared:
            raise PlanError(f"variant {crowded}: no package layer left (budget {budgets[crowded]})")
        smallest = min(shared, key=lambda c: (sum(classes[c].values()), len(c), c))
        for pkg, size in classes.pop(smallest).items():
            for v in smallest:
                classes.setdefault((v,), {})[pkg] = size


def class_order(classes: Mapping[Class, object], names: Sequence[str]) -> list[Class]:
    index = {v: i for i, v in enumerate(names)}
    return sorted(classes, key=lambda c: (-len(c), [index[v] for v in c]))


def _allocate(classes: dict[Class, dict[str, int]], order: list[Class], budgets: Mapping[str, int]) -> dict[Class, int]:
    """Layers per class: each variant's budget shared among its classes by bytes, at least one each."""
    remaining = dict(budgets)
    left_bytes = {v: sum(sum(classes[c].values()) for c in order if v in c) for v in budgets}
    left_classes = {v: sum(v in c for c in order) for v in budgets}
    counts: dict[Class, int] = {}
    for cls in order:
        size = sum(classes[cls].values())
        want = min(remaining[v] * size // left_bytes[v] if left_bytes[v] else 1 for v in cls)
        if all(left_classes[v] == 1 for v in cls):
            want = min(remaining[v] for v in cls)  # the last class of each of its variants takes what is left
        cap = min(remaining[v] - (left_classes[v] - 1) for v in cls)
        counts[cls] = max(1, min(want, cap, len(classes[cls])))
        for v in cls:
            remaining[v] -= counts[cls]
            left_bytes[v] -= size
            left_classes[v] -= 1
    return counts


def _renumber(layers: list[PlannedLayer], first_free: int) -> None:
    """A layer id the plan already gave (an old layer split between classes) gets a new number."""
    seen: set[str] = set()
    number = first_free
    for layer in layers:
        if layer.id in seen:
            layer.id = f"p{number:04d}"
            number += 1
        seen.add(layer.id)


def _number(layer_id: str) -> int:
    return int(layer_id[1:]) if layer_id[:1] == "p" and layer_id[1:].isdigit() else 0


def make_compose_plan(sizes: Mapping[str, Mapping[str, int]], budgets: Mapping[str, int],
                      previous: LayerPlan | None = None) -> dict[str, LayerPlan]:
    """Each variant's plan (``sizes``: variant → package → bytes of its layer, in the compose's variant
    order; ``budgets``: variant → package layers its image may have). Shared layers carry the same id,
    packages and order in every plan holding them."""
    names = list(sizes)
    for v in names:
        if budgets[v] < 1 and sizes[v]:
            raise PlanError(f"variant {v}: at least one package layer is needed, the budget is {budgets[v]}")
    classes = package_classes(sizes)
    _give_up_shared(classes, budgets)
    order = class_order(classes, names)
    counts = _allocate(classes, order, budgets)
    layers: list[PlannedLayer] = []
    first = max((_number(x.id) for x in previous.layers), default=0) + 1 if previous else 1
    for cls in order:
        planned = make_plan(classes[cls], counts[cls], previous, first_number=first)
        for layer in planned.layers:
            layer.variants = list(cls)
        layers.extend(planned.layers)
        first = max([first - 1, *(_number(x.id) for x in planned.layers)]) + 1
    _renumber(layers, first)
    return {
        v: LayerPlan(layers=[x for x in layers if v in x.variants], budget=max(budgets[v], 0), variants=names)
        for v in names
    }
