"""Tags of a project: create, edit, reorder, archive."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.models import Project, Tag

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
PALETTE = (
    "#4f7cff", "#e5484d", "#30a46c", "#f5a524", "#8e4ec6",
    "#12a594", "#e54666", "#0090ff", "#ad7f58", "#7c66dc",
)  # fmt: skip
# `a` assigns the selected tag, j/k/arrows move, space/enter mark labeled, g toggles grid.
RESERVED_HOTKEYS = frozenset("ajkgxuz ")
UNSET = object()


def get_all(*, session: Session, project: Project, include_archived: bool = True) -> list[Tag]:
    """The project's tags in display order."""
    query = select(Tag).where(Tag.project_id == project.id)
    if not include_archived:
        query = query.where(Tag.archived.is_(False))
    return list(session.scalars(query.order_by(Tag.position, Tag.id)))


def get(*, session: Session, project: Project, tag_id: int) -> Tag:
    """One tag of the project, or NotFound."""
    tag = session.get(Tag, tag_id)
    if tag is None or tag.project_id != project.id:
        raise NotFound(f"tag {tag_id} not found in project '{project.name}'")
    return tag


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("the tag name must not be empty")
    if len(name) > 100:
        raise InvalidInput(f"the tag name '{name[:20]}…' is longer than 100 characters")
    return name


def _check_name_free(session: Session, project: Project, name: str, own_id: int | None) -> None:
    other = session.scalar(
        select(Tag).where(Tag.project_id == project.id, Tag.name_key == name.lower())
    )
    if other is not None and other.id != own_id:
        raise Conflict(f"a tag named '{other.name}' already exists in project '{project.name}'")


def _clean_hotkey(
    session: Session, project: Project, hotkey: str | None, own_id: int | None
) -> str | None:
    if hotkey is None or hotkey == "":
        return None
    hotkey = hotkey.lower()
    if len(hotkey) != 1 or not hotkey.isalnum():
        raise InvalidInput(f"hotkey '{hotkey}' must be a single letter or digit")
    if hotkey in RESERVED_HOTKEYS:
        raise InvalidInput(f"hotkey '{hotkey}' is reserved by the annotator")
    other = session.scalar(
        select(Tag).where(Tag.project_id == project.id, Tag.hotkey == hotkey)
    )
    if other is not None and other.id != own_id:
        raise Conflict(f"hotkey '{hotkey}' is already used by tag '{other.name}'")
    return hotkey


def _clean_color(color: str) -> str:
    if not COLOR_RE.match(color):
        raise InvalidInput(f"color '{color}' must look like #4f7cff")
    return color.lower()


def _clean_group(group: str | None) -> str | None:
    group = " ".join((group or "").split())
    return group[:100] or None


def create(
    *,
    session: Session,
    project: Project,
    name: str,
    color: str | None = None,
    hotkey: str | None = None,
    group: str | None = None,
    commit: bool = True,
) -> Tag:
    """Add a tag at the end of the project's list."""
    name = _clean_name(name)
    _check_name_free(session, project, name, None)
    hotkey = _clean_hotkey(session, project, hotkey, None)
    position = session.scalar(
        select(func.coalesce(func.max(Tag.position), -1)).where(Tag.project_id == project.id)
    )
    next_position = int(position if position is not None else -1) + 1
    tag = Tag(
        project_id=project.id,
        name=name,
        name_key=name.lower(),
        color=_clean_color(color) if color else PALETTE[next_position % len(PALETTE)],
        hotkey=hotkey,
        group=_clean_group(group),
        position=next_position,
    )
    session.add(tag)
    if commit:
        session.commit()
    else:
        session.flush()
    return tag


def update(
    *,
    session: Session,
    project: Project,
    tag: Tag,
    name: str | None = None,
    color: str | None = None,
    hotkey: object = UNSET,
    group: object = UNSET,
    archived: bool | None = None,
) -> Tag:
    """Rename, recolor, rebind, regroup or (un)archive a tag; only the given fields change."""
    if name is not None:
        name = _clean_name(name)
        _check_name_free(session, project, name, tag.id)
        tag.name, tag.name_key = name, name.lower()
    if color is not None:
        tag.color = _clean_color(color)
    if hotkey is not UNSET:
        tag.hotkey = _clean_hotkey(session, project, hotkey, tag.id)  # type: ignore[arg-type]
    if group is not UNSET:
        tag.group = _clean_group(group)  # type: ignore[arg-type]
    if archived is not None:
        tag.archived = archived
    session.commit()
    return tag


def reorder(*, session: Session, project: Project, tag_ids: list[int]) -> list[Tag]:
    """Put the project's tags in the given order; the list must name each tag exactly once."""
    tags = get_all(session=session, project=project)
    by_id = {tag.id: tag for tag in tags}
    if len(tag_ids) != len(set(tag_ids)):
        raise InvalidInput("the order names a tag more than once")
    unknown = [tag_id for tag_id in tag_ids if tag_id not in by_id]
    if unknown:
        raise InvalidInput(f"tag {unknown[0]} is not in project '{project.name}'")
    missing = [tag.name for tag in tags if tag.id not in set(tag_ids)]
    if missing:
        raise InvalidInput(f"the order leaves out tag '{missing[0]}'")
    for position, tag_id in enumerate(tag_ids):
        by_id[tag_id].position = position
    session.commit()
    return get_all(session=session, project=project)


def delete(*, session: Session, tag: Tag) -> None:
    """Delete a tag and its annotations (archive it to keep them)."""
    session.delete(tag)
    session.commit()
