"""Build-dependency relations: which apply to a build (arch and profile restrictions), how to print them,
and what apt's simulated install says it would do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from debian.deb822 import PkgRelation

_INST_RE = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*?\[(\S+)\]\)")

# Debian architecture -> (os, cpu) for the few arches matched with wildcards here.
_ARCH_TUPLES = {
    "amd64": ("linux", "amd64"),
    "arm64": ("linux", "arm64"),
    "armhf": ("linux", "arm"),
    "i386": ("linux", "i386"),
    "ppc64el": ("linux", "ppc64el"),
    "riscv64": ("linux", "riscv64"),
    "s390x": ("linux", "s390x"),
}


@dataclass(frozen=True)
class Relation:
    text: str  # e.g. "libfoo-dev (>= 2) | libbar-dev"
    packages: tuple[str, ...]


def arch_matches(pattern: str, arch: str) -> bool:
    if pattern in (arch, "any"):
        return True
    os_name, cpu = _ARCH_TUPLES.get(arch, ("linux", arch))
    if "-" in pattern:
        p_os, p_cpu = pattern.split("-", 1)
        return p_os in (os_name, "any") and p_cpu in (cpu, "any")
    return False


def _arch_ok(restrictions: Any, arch: str) -> bool:
    if not restrictions:
        return True
    positives = [r for r in restrictions if getattr(r, "enabled", True)]
    negatives = [r for r in restrictions if not getattr(r, "enabled", True)]
    if positives:
        return any(arch_matches(str(getattr(r, "arch", r)), arch) for r in positives)
    return not any(arch_matches(str(getattr(r, "arch", r)), arch) for r in negatives)


def _profiles_ok(restrictions: Any, profiles: frozenset[str]) -> bool:
    if not restrictions:
        return True
    # a list of alternatives (OR) of conjunctions (AND) of terms
    for conj in restrictions:
        if all((getattr(t, "profile", "") in profiles) == getattr(t, "enabled", True) for t in conj):
            return True
    return False


def applicable(field: str, arch: str, profiles: frozenset[str] = frozenset()) -> list[Relation]:
    """The relations of a Build-Depends-style field that apply on ``arch`` with ``profiles`` active."""
    out: list[Relation] = []
    for group in PkgRelation.parse_relations(field or ""):
        alts = []
        for alt in group:
            if not alt.get("name"):
                continue
            if not _arch_ok(alt.get("arch"), arch) or not _profiles_ok(alt.get("restrictions"), profiles):
                continue
            alts.append(alt)
        if not alts:
            continue
        parts = []
        for alt in alts:
            s = alt["name"] + (f":{alt['archqual']}" if alt.get("archqual") else "")
            ver = alt.get("version")
            if ver:
                s += f" ({ver[0]} {ver[1]})"
            parts.append(s)
        out.append(Relation(" | ".join(parts), tuple(a["name"] for a in alts)))
    return out


def parse_simulation(output: str) -> list[str]:
    """``name=version:arch`` for every package an ``apt-get -s`` run would install."""
    resolved = []
    for line in output.splitlines():
        m = _INST_RE.match(line)
        if m:
            resolved.append(f"{m.group(1)}={m.group(2)}:{m.group(3)}")
    return sorted(resolved)
