"""The layer plan: which package goes into which layer, kept stable from one compose to the next.

A fresh plan gives the biggest packages a layer each while they are bigger than a fair share of what is
left, and packs the rest into the remaining layers (largest first, into the smallest layer). A plan made
with the previous compose's plan keeps every package that is still there in its layer, drops packages that
are gone (and layers left empty), and puts new packages in a new layer while the budget allows (one alone
when it is big, the small ones together), otherwise into the smallest layer. So changing one package
changes only the layer holding it, and adding packages leaves the existing layers alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose.oci.errors import OciError

PLAN_FORMAT = "deb-bootc-compose.oci-layer-plan"
PLAN_VERSION = 1


class PlanError(OciError):
    """A plan file cannot be used; the message names the file and what is wrong with it."""


@dataclass
class PlannedLayer:
    id: str  # "p0001", stable across composes
    packages: list[str] = field(default_factory=list)
    size: int = 0  # bytes of regular files in this compose
    variants: list[str] = field(default_factory=list)  # the compose's variants whose images hold this layer

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "packages": self.packages, "size": self.size, "variants": self.variants}


@dataclass
class LayerPlan:
    layers: list[PlannedLayer] = field(default_factory=list)
    budget: int = 0  # package layers allowed when the plan was made
    variants: list[str] = field(default_factory=list)  # the compose's variants (of this arch) planned together

    def layer_of(self) -> dict[str, str]:
        return {pkg: layer.id for layer in self.layers for pkg in layer.packages}

    def to_json(self) -> dict[str, object]:
        return {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "budget": self.budget,
            "variants": self.variants,
            "layers": [layer.to_json() for layer in self.layers],
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> LayerPlan:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise PlanError(f"previous layer plan {path} does not exist") from exc
        except (OSError, ValueError) as exc:
            raise PlanError(
                f"previous layer plan {path} is not readable JSON ({exc}); delete it to start a fresh plan "
                "(the next image then shares no layers with the previous one)"
            ) from exc
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise PlanError(f'{path} is not a layer plan (no "format": "{PLAN_FORMAT}")')
        if data.get("version") != PLAN_VERSION:
            raise PlanError(f"{path}: layer plan version {data.get('version')!r} is not supported ({PLAN_VERSION} is)")
        layers = []
        seen: set[str] = set()
        for i, item in enumerate(data.get("layers") or []):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("id"), str)
                or not isinstance(item.get("packages"), list)
                or not all(isinstance(p, str) for p in item["packages"])
            ):
                raise PlanError(f'{path}: layers[{i}] needs a string "id" and a list of package names')
            if item["id"] in seen:
                raise PlanError(f"{path}: layers[{i}]: layer id {item['id']!r} appears twice")
            seen.add(item["id"])
            layers.append(PlannedLayer(item["id"], list(item["packages"]), int(item.get("size") or 0),
                                       _names(item.get("variants"))))
        return cls(layers=layers, budget=int(data.get("budget") or 0), variants=_names(data.get("variants")))


def _names(value: object) -> list[str]:
    """The optional ``variants`` lists (plans written before compose-wide planning have none)."""
    return [str(v) for v in value] if isinstance(value, list) else []


def _layer_id(n: int) -> str:
    return f"p{n:04d}"


def _next_number(layers: list[PlannedLayer]) -> int:
    numbers = [int(layer.id[1:]) for layer in layers if layer.id[:1] == "p" and layer.id[1:].isdigit()]
    return max(numbers, default=0) + 1


def _by_size(sizes: dict[str, int], names: list[str] | set[str]) -> list[str]:
    return sorted(names, key=lambda p: (-sizes[p], os.fsencode(p)))


def _pack(sizes: dict[str, int], names: list[str], bins: list[PlannedLayer]) -> None:
    """Largest first into the currently smallest bin (ties: the earlier bin)."""
    for pkg in _by_size(sizes, names):
        target = min(bins, key=lambda b: b.size)
        target.packages.append(pkg)
        target.size += sizes[pkg]


def _fresh(sizes: dict[str, int], budget: int, first_number: int) -> list[PlannedLayer]:
    remaining = _by_size(sizes, list(sizes))
    layers: list[PlannedLayer] = []
    number = first_number
    if len(remaining) <= budget:
        return [PlannedLayer(_layer_id(first_number + i), [p], sizes[p]) for i, p in enumerate(remaining)]
    left_total = sum(sizes.values())
    while remaining and budget - len(layers) > 1:
        pkg = remaining[0]
        if sizes[pkg] * (budget - len(layers)) < left_total:
            break
        layers.append(PlannedLayer(_layer_id(number), [pkg], sizes[pkg]))
        number += 1
        left_total -= sizes[pkg]
        remaining.pop(0)
    if remaining:
        bins = [PlannedLayer(_layer_id(number + i)) for i in range(min(budget - len(layers), len(remaining)))]
        _pack(sizes, remaining, bins)
        layers.extend(bins)
    return layers


def make_plan(sizes: dict[str, int], budget: int, previous: LayerPlan | None = None,
              first_number: int = 1) -> LayerPlan:
    """Assign every package of ``sizes`` (name → bytes) to one of at most ``budget`` layers; new layers are
    numbered from ``first_number`` on (or after the previous plan's highest, when that is higher)."""
    if budget < 1:
        raise PlanError(f"at least one package layer is needed, the budget is {budget}")
    if previous is None or not previous.layers:
        layers = _fresh(sizes, budget, first_number)
    else:
        layers = []
        placed: set[str] = set()
        for old in previous.layers:
            kept = [p for p in old.packages if p in sizes and p not in placed]
            placed.update(kept)
            if kept:
                layers.append(PlannedLayer(old.id, kept, sum(sizes[p] for p in kept)))
        # Too many layers (the budget shrank): merge the two smallest until it fits.
        while len(layers) > budget:
            ordered = sorted(layers, key=lambda layer: (layer.size, layer.id))
            small, other = ordered[0], ordered[1]
            keep, drop = (small, other) if small.id < other.id else (other, small)
            keep.packages.extend(drop.packages)
            keep.size += drop.size
            layers.remove(drop)
        new = [p for p in sizes if p not in placed]
        if new:
            number = max(_next_number(previous.layers), first_number)  # ids of dropped layers are not reused
            total = sum(sizes.values())
            small_new: list[str] = []
            for pkg in _by_size(sizes, new):
                if len(layers) < budget - 1 and sizes[pkg] * budget >= total:
                    layers.append(PlannedLayer(_layer_id(number), [pkg], sizes[pkg]))
                    number += 1
                else:
                    small_new.append(pkg)
            if small_new:
                if len(layers) < budget:
                    layers.append(PlannedLayer(_layer_id(number)))
                    _pack(sizes, small_new, [layers[-1]])
                else:
                    _pack(sizes, small_new, layers)
    for layer in layers:
        layer.packages.sort(key=os.fsencode)
    layers.sort(key=lambda layer: layer.id)
    return LayerPlan(layers=layers, budget=budget)
