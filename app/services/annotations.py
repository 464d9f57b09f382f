"""Tagging images: one (image, tag) at a time, in bulk, review states, exclusivity groups, undo.

Every change is a set of conditional statements on single (image, tag) rows: INSERT ... ON
CONFLICT DO NOTHING to add, DELETE ... WHERE to remove, UPDATE ... WHERE state differs to mark.
Nothing reads an image's tag set and writes it back, so two people tagging the same images at
once never undo each other's work, and replaying a request changes nothing. Each statement
RETURNs the rows it really changed; that list is the response, and the client's undo.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Integer, String, cast, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.models import Annotation, Asset, Project, Tag, User, utcnow
from app.models.assets import REVIEW_STATES
from app.models.base import UTCDateTime
from app.services import asset_search
from app.services.asset_search import AssetFilter

# Explicit id lists come from a page or a shift-selected range; larger sets go by filter.
MAX_EXPLICIT_IDS = 10_000
# Statements work on chunks of ids so no query passes more bound parameters than the database
# allows (SQLite: 32,766; PostgreSQL: 65,535).
CHUNK = 2_000
# The response carries the resulting tag sets of at most this many images.
MAX_STATES = 500

Pair = tuple[int, int]


@dataclass
class AssetState:
    """An image's tags and review state after a change."""

    id: int
    review_state: str
    tag_ids: list[int]


@dataclass
class ChangeSet:
    """What a change really did: (asset id, tag id) pairs added and removed, images whose
    review state flipped, how many images it targeted, and the resulting states of up to
    MAX_STATES of them."""

    added: list[Pair] = field(default_factory=list)
    removed: list[Pair] = field(default_factory=list)
    labeled: list[int] = field(default_factory=list)
    unlabeled: list[int] = field(default_factory=list)
    matched: int = 0
    assets: list[AssetState] = field(default_factory=list)


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def _project_tags(session: Session, project: Project) -> dict[int, Tag]:
    return {tag.id: tag for tag in session.scalars(select(Tag).where(Tag.project_id == project.id))}


def _check_tags(
    project: Project, tags: dict[int, Tag], tag_ids: Iterable[int], adding: bool
) -> None:
    for tag_id in tag_ids:
        tag = tags.get(tag_id)
        if tag is None:
            raise InvalidInput(f"tag {tag_id} is not in project '{project.name}'")
        if adding and tag.archived:
            raise InvalidInput(f"tag '{tag.name}' is archived: restore it before assigning it")


def _group_rivals(tags: dict[int, Tag], add_tag_ids: Sequence[int]) -> list[int]:
    """Tags that adding `add_tag_ids` must remove: the other members of their groups."""
    groups: dict[str, int] = {}
    for tag_id in add_tag_ids:
        group = tags[tag_id].group
        if group is None:
            continue
        if group in groups:
            first = tags[groups[group]].name
            raise InvalidInput(
                f"tags '{first}' and '{tags[tag_id].name}' are both in group '{group}' "
                "and exclude each other: assign one of them"
            )
        groups[group] = tag_id
    return sorted(
        tag.id
        for tag in tags.values()
        if tag.group is not None and tag.group in groups and groups[tag.group] != tag.id
    )


def _existing_ids(session: Session, project: Project, asset_ids: Iterable[int]) -> list[int]:
    wanted = sorted(set(asset_ids))
    if len(wanted) > MAX_EXPLICIT_IDS:
        raise InvalidInput(
            f"{len(wanted)} images named; at most {MAX_EXPLICIT_IDS} per request "
            "(use a filter to change more)"
        )
    found: list[int] = []
    for chunk in _chunks(wanted):
        found.extend(
            session.scalars(
                select(Asset.id).where(Asset.project_id == project.id, Asset.id.in_(chunk))
            )
        )
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise InvalidInput(
            f"image {missing[0]} is not in project '{project.name}'"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            details={"missing_asset_ids": missing[:100]},
        )
    return sorted(found)


def _lock(session: Session, asset_ids: list[int]) -> None:
    """On PostgreSQL, lock the images whose exclusive tags change, so that two people assigning
    rival tags of one group at once end with one of them, not both. SQLite already runs one
    writer at a time."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for chunk in _chunks(asset_ids):
        session.execute(
            select(Asset.id).where(Asset.id.in_(chunk)).order_by(Asset.id).with_for_update()
        ).all()


def _delete_pairs(session: Session, asset_ids: list[int], tag_ids: Sequence[int]) -> list[Pair]:
    if not tag_ids:
        return []
    removed: list[Pair] = []
    for chunk in _chunks(asset_ids):
        rows = session.execute(
            delete(Annotation)
            .where(Annotation.asset_id.in_(chunk), Annotation.tag_id.in_(list(tag_ids)))
            .returning(Annotation.asset_id, Annotation.tag_id)
        )
        removed.extend((asset_id, tag_id) for asset_id, tag_id in rows)
    return removed


def _insert_pairs(
    session: Session, project_id: int, asset_ids: list[int], tag_id: int, author_id: int | None
) -> list[Pair]:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    added: list[Pair] = []
    for chunk in _chunks(asset_ids):
        rows_to_add = select(
            Asset.id,
            literal(tag_id, Integer),
            literal("human", String),
            # A typed NULL: PostgreSQL cannot infer the type of a bare NULL in a SELECT list.
            cast(literal(author_id, Integer), Integer),
            literal(now, UTCDateTime),
        ).where(Asset.project_id == project_id, Asset.id.in_(chunk))
        statement = (
            insert(Annotation)
            .from_select(["asset_id", "tag_id", "source", "author_id", "created_at"], rows_to_add)
            .on_conflict_do_nothing(index_elements=["asset_id", "tag_id"])
            .returning(Annotation.asset_id, Annotation.tag_id)
        )
        added.extend((asset_id, tag) for asset_id, tag in session.execute(statement))
    return added


def _set_review(session: Session, asset_ids: list[int], state: str) -> list[int]:
    changed: list[int] = []
    now = utcnow()
    for chunk in _chunks(asset_ids):
        rows = session.execute(
            update(Asset)
            .where(Asset.id.in_(chunk), Asset.review_state != state)
            .values(review_state=state, updated_at=now)
            .returning(Asset.id)
        )
        changed.extend(rows.scalars())
    return sorted(changed)


def _add(
    session: Session,
    project: Project,
    tags: dict[int, Tag],
    asset_ids: list[int],
    add_tag_ids: Sequence[int],
    author_id: int | None,
    change: ChangeSet,
) -> None:
    """Add tags with their groups' exclusivity: rivals go first, then the new rows."""
    rivals = _group_rivals(tags, add_tag_ids)
    if rivals:
        _lock(session, asset_ids)
        change.removed.extend(_delete_pairs(session, asset_ids, rivals))
    for tag_id in add_tag_ids:
        change.added.extend(_insert_pairs(session, project.id, asset_ids, tag_id, author_id))


def _states(session: Session, asset_ids: list[int]) -> list[AssetState]:
    if not asset_ids or len(asset_ids) > MAX_STATES:
        return []
    rows = session.execute(
        select(Asset.id, Asset.review_state, Annotation.tag_id)
        .outerjoin(Annotation, Annotation.asset_id == Asset.id)
        .where(Asset.id.in_(asset_ids))
        .order_by(Asset.id, Annotation.tag_id)
    )
    states: dict[int, AssetState] = {}
    for asset_id, review_state, tag_id in rows:
        state = states.setdefault(asset_id, AssetState(asset_id, review_state, []))
        if tag_id is not None:
            state.tag_ids.append(tag_id)
    return list(states.values())


def _finish(session: Session, change: ChangeSet, asset_ids: list[int]) -> ChangeSet:
    # The resulting states are read inside the transaction, before the commit: the same
    # values, and no second connection (with SQLite's NullPool, each one costs a checkpoint).
    change.assets = _states(session, asset_ids)
    session.commit()
    change.added.sort()
    change.removed.sort()
    change.matched = len(asset_ids)
    return change


def set_tag(
    *,
    session: Session,
    project: Project,
    asset_id: int,
    tag_id: int,
    present: bool,
    author: User | None,
    mark_labeled: bool = True,
) -> ChangeSet:
    """Put a tag on one image or take it off; adding also marks the image labeled unless told
    otherwise. Setting what is already there changes nothing."""
    asset_project = session.scalar(select(Asset.project_id).where(Asset.id == asset_id))
    if asset_project != project.id:
        raise NotFound(f"image {asset_id} not found in project '{project.name}'")
    tag = session.get(Tag, tag_id)
    # Only the tag and its group's members are needed: cheaper than the project's whole list.
    tags = {tag.id: tag} if tag is not None and tag.project_id == project.id else {}
    _check_tags(project, tags, [tag_id], adding=present)
    if present and tag is not None and tag.group is not None:
        members = session.scalars(
            select(Tag).where(Tag.project_id == project.id, Tag.group == tag.group)
        )
        tags.update({member.id: member for member in members})
    change = ChangeSet()
    ids = [asset_id]
    if present:
        _add(session, project, tags, ids, [tag_id], author.id if author else None, change)
        if mark_labeled:
            change.labeled = _set_review(session, ids, "labeled")
    else:
        change.removed = _delete_pairs(session, ids, [tag_id])
    return _finish(session, change, ids)


def change(
    *,
    session: Session,
    project: Project,
    author: User | None,
    asset_ids: Sequence[int] | None = None,
    asset_filter: AssetFilter | None = None,
    add_tag_ids: Sequence[int] = (),
    remove_tag_ids: Sequence[int] = (),
    review_state: str | None = None,
) -> ChangeSet:
    """Add and/or remove tags and/or set the review state on explicit images or on every image
    matching a filter, in one transaction. Removals run before additions."""
    if (asset_ids is None) == (asset_filter is None):
        raise InvalidInput("name the images either by 'asset_ids' or by 'filter'")
    if review_state is not None and review_state not in REVIEW_STATES:
        raise InvalidInput(f"review state '{review_state}' must be labeled or unlabeled")
    add = list(dict.fromkeys(add_tag_ids))
    remove = list(dict.fromkeys(remove_tag_ids))
    if not add and not remove and review_state is None:
        raise InvalidInput("nothing to change: give tags to add or remove, or a review state")
    both = set(add) & set(remove)
    if both:
        raise InvalidInput(f"tag {min(both)} cannot be added and removed at once")
    tags = _project_tags(session, project)
    _check_tags(project, tags, add, adding=True)
    _check_tags(project, tags, remove, adding=False)
    _group_rivals(tags, add)
    if asset_filter is not None:
        asset_search.check_filter(session=session, project=project, asset_filter=asset_filter)
        # The filter is resolved once, up front: adding tag X to "images lacking X" must not
        # shrink the set between statements.
        ids = list(
            session.scalars(asset_search.matching_ids(project=project, asset_filter=asset_filter))
        )
    else:
        ids = _existing_ids(session, project, asset_ids or [])
    result = ChangeSet()
    if ids:
        result.removed = _delete_pairs(session, ids, remove)
        _add(session, project, tags, ids, add, author.id if author else None, result)
        if review_state == "labeled":
            result.labeled = _set_review(session, ids, "labeled")
        elif review_state == "unlabeled":
            result.unlabeled = _set_review(session, ids, "unlabeled")
    return _finish(session, result, ids)


def _by_tag(pairs: Iterable[Pair]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for asset_id, tag_id in pairs:
        grouped[tag_id].append(asset_id)
    return grouped


def revert(
    *,
    session: Session,
    project: Project,
    author: User | None,
    added: Sequence[Pair] = (),
    removed: Sequence[Pair] = (),
    labeled: Sequence[int] = (),
    unlabeled: Sequence[int] = (),
) -> ChangeSet:
    """Undo a ChangeSet: take off what it added, put back what it removed (groups still
    exclude), flip review states back. Returns what the undo changed, which redoes it."""
    named = {a for a, _ in added} | {a for a, _ in removed} | set(labeled) | set(unlabeled)
    ids = _existing_ids(session, project, named)
    tags = _project_tags(session, project)
    _check_tags(project, tags, {t for _, t in [*added, *removed]}, adding=False)
    result = ChangeSet()
    author_id = author.id if author else None
    for tag_id, asset_ids in sorted(_by_tag(added).items()):
        result.removed.extend(_delete_pairs(session, sorted(set(asset_ids)), [tag_id]))
    for tag_id, asset_ids in sorted(_by_tag(removed).items()):
        if tags[tag_id].archived:
            continue
        _add(session, project, tags, sorted(set(asset_ids)), [tag_id], author_id, result)
    result.unlabeled = _set_review(session, sorted(set(labeled)), "unlabeled")
    result.labeled = _set_review(session, sorted(set(unlabeled)), "labeled")
    return _finish(session, result, ids)
