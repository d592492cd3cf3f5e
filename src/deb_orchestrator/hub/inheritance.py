"""Tag inheritance (Koji's rule): a tag, then its parents in priority order, depth first, each once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from deb_orchestrator.hub.models import ExternalRepo, Tag, TagParent


def parents(session: Session, tag_id: int) -> list[int]:
    rows = session.execute(
        select(TagParent.parent_id).where(TagParent.tag_id == tag_id).order_by(TagParent.priority, TagParent.id)
    )
    return [r[0] for r in rows]


def order(session: Session, tag_id: int) -> list[int]:
    """The inheritance order starting with ``tag_id`` itself."""
    seen: list[int] = []

    def walk(tid: int) -> None:
        if tid in seen:
            return
        seen.append(tid)
        for p in parents(session, tid):
            walk(p)

    walk(tag_id)
    return seen


def descendants(session: Session, tag_id: int) -> list[int]:
    """Every tag whose inheritance includes ``tag_id`` (itself included)."""
    result = [tag_id]
    frontier = [tag_id]
    while frontier:
        rows = session.execute(select(TagParent.tag_id).where(TagParent.parent_id.in_(frontier))).all()
        frontier = [r[0] for r in rows if r[0] not in result]
        result.extend(frontier)
    return result


def would_cycle(session: Session, tag_id: int, parent_id: int) -> bool:
    return tag_id in order(session, parent_id)


def external_repos(session: Session, tag_id: int) -> list[ExternalRepo]:
    """External repos of the tag and everything it inherits, in inheritance order."""
    result: list[ExternalRepo] = []
    for tid in order(session, tag_id):
        result.extend(
            session.scalars(
                select(ExternalRepo).where(ExternalRepo.tag_id == tid).order_by(ExternalRepo.priority, ExternalRepo.id)
            )
        )
    return result


def names(session: Session, ids: list[int]) -> list[str]:
    by_id = {t.id: t.name for t in session.scalars(select(Tag).where(Tag.id.in_(ids)))}
    return [by_id[i] for i in ids]
