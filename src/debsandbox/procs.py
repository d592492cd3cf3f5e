"""The process table, read from /proc: who is whose child, who still runs (not a zombie)."""

from __future__ import annotations

import os


def table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, state) of every process, from /proc."""
    found: dict[int, tuple[int, int, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = raw[raw.rfind(b")") + 2:].split()
        if len(fields) >= 3:
            found[int(name)] = (int(fields[1]), int(fields[2]), fields[0].decode())
    return found


def descendants(pid: int, procs: dict[int, tuple[int, int, str]] | None = None) -> set[int]:
    """Every process below ``pid`` by parent links (of ``procs``, or of the table read now)."""
    procs = table() if procs is None else procs
    children: dict[int, list[int]] = {}
    for p, (ppid, _pgid, _state) in procs.items():
        children.setdefault(ppid, []).append(p)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return False
    return raw[raw.rfind(b")") + 2:].split()[:1] != [b"Z"]
