"""Tag changes: single, bulk, review states, exclusivity groups, idempotency and undo."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import new_session
from app.errors import InvalidInput, NotFound
from app.models import Annotation, Asset, Project, Tag, User
from app.services import annotations as annotation_service
from app.services import projects as project_service
from app.services.asset_search import AssetFilter
from tests.fixtures.annotating import make_assets, tag_assets

MakeTag = Callable[..., Tag]


def _tags_of(session: Session, asset: Asset) -> set[int]:
    session.expire_all()
    return set(session.scalars(select(Annotation.tag_id).where(Annotation.asset_id == asset.id)))


def _state(session: Session, asset: Asset) -> str:
    session.expire_all()
    return session.scalars(select(Asset.review_state).where(Asset.id == asset.id)).one()


def test_set_tag_adds_once_marks_labeled_and_removes(
    session: Session, project: Project, user: User, make_tag: MakeTag
) -> None:
    weed = make_tag("weed")
    (asset,) = make_assets(session, project, 1)
    first = annotation_service.set_tag(
        session=session, project=project, asset_id=asset.id, tag_id=weed.id, present=True,
        author=user,
    )  # fmt: skip
    assert (first.added, first.labeled, first.matched) == ([(asset.id, weed.id)], [asset.id], 1)
    assert [(s.id, s.review_state, s.tag_ids) for s in first.assets] == [
        (asset.id, "labeled", [weed.id])
    ]
    again = annotation_service.set_tag(
        session=session, project=project, asset_id=asset.id, tag_id=weed.id, present=True,
        author=user,
    )  # fmt: skip
    assert (again.added, again.removed, again.labeled) == ([], [], []), "replay changes nothing"
    row = session.scalars(select(Annotation)).one()
    assert (row.source, row.author_id) == ("human", user.id)

    off = annotation_service.set_tag(
        session=session, project=project, asset_id=asset.id, tag_id=weed.id, present=False,
        author=user,
    )  # fmt: skip
    assert off.removed == [(asset.id, weed.id)]
    assert _tags_of(session, asset) == set()
    assert _state(session, asset) == "labeled", "removing a tag keeps the review"


def test_set_tag_without_marking_labeled(
    session: Session, project: Project, user: User, make_tag: MakeTag
) -> None:
    weed = make_tag("weed")
    (asset,) = make_assets(session, project, 1)
    change = annotation_service.set_tag(
        session=session, project=project, asset_id=asset.id, tag_id=weed.id, present=True,
        author=user, mark_labeled=False,
    )  # fmt: skip
    assert change.labeled == []
    assert _state(session, asset) == "unlabeled"


def test_exclusive_group_replaces_the_rival(
    session: Session, project: Project, user: User, make_tag: MakeTag
) -> None:
    healthy = make_tag("healthy", group="health")
    diseased = make_tag("diseased", group="health")
    weed = make_tag("weed")
    first, second = make_assets(session, project, 2)
    tag_assets(session, [(first.id, healthy.id), (first.id, weed.id), (second.id, weed.id)])

    change = annotation_service.set_tag(
        session=session, project=project, asset_id=first.id, tag_id=diseased.id, present=True,
        author=user,
    )  # fmt: skip
    assert change.added == [(first.id, diseased.id)]
    assert change.removed == [(first.id, healthy.id)]
    assert _tags_of(session, first) == {diseased.id, weed.id}, "other groups are untouched"

    bulk = annotation_service.change(
        session=session, project=project, author=user, asset_ids=[first.id, second.id],
        add_tag_ids=[healthy.id],
    )  # fmt: skip
    assert bulk.added == [(first.id, healthy.id), (second.id, healthy.id)]
    assert bulk.removed == [(first.id, diseased.id)]
    assert _tags_of(session, first) == {healthy.id, weed.id}


def test_two_tags_of_one_group_at_once_are_refused(
    session: Session, project: Project, user: User, make_tag: MakeTag
) -> None:
    healthy = make_tag("healthy", group="health")
    diseased = make_tag("diseased", group="health")
    (asset,) = make_assets(session, project, 1)
    with pytest.raises(InvalidInput, match="'healthy' and 'diseased' are both in group 'health'"):
        annotation_service.change(
            session=session, project=project, author=user, asset_ids=[asset.id],
            add_tag_ids=[healthy.id, diseased.id],
        )  # fmt: skip


def test_bulk_add_remove_and_review_on_explicit_ids(
    session: Session, project: Project, user: User, make_tag: MakeTag
) -> None:
    weed, crop = make_tag("weed"), make_tag("crop")
    assets = make_assets(session, project, 5)
    ids = [a.id for a in assets]
    tag_assets(session, [(ids[0], crop.id), (ids[1], weed.id)])

    change = annotation_service.change(
        session=session, project=project, author=user, asset_ids=ids[:3],
        add_tag_ids=[weed.id], remove_tag_ids=[crop.id],
    )  # fmt: skip
    assert change.added == [(ids[0], weed.id), (ids[2], weed.id)], "ids[1] had it already"
    assert change.removed == [(ids[0], crop.id)]
    assert change.labeled == [], "bulk tagging leaves the review state alone"
    assert change.matched == 3

    # "Labeled, no tag applies": a review without tags.
    none_apply = annotation_service.change(
        session=session, project=project, author=user, asset_ids=[ids[3]],
        review_state="labeled",
    )  # fmt: skip
    assert none_apply.labeled == [ids[3]]
    assert (_state(session, assets[3]), _tags_of(session, assets[3])) == ("labeled", set())
    back = annotation_service.change(
        session=session, project=project, author=user, asset_ids=[ids[3], ids[4]],
        review_state="unlabeled",
    )  # fmt: skip
    assert (back.unlabeled, back.labeled) == ([ids[3]], [])


def test_bulk_by_filter_resolves_the_set_once(
    session: Session,
    project: Project,
    user: User,
    make_tag: MakeTag,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(annotation_service, "CHUNK", 3)  # several chunks on a small set
    weed, crop = make_tag("weed"), make_tag("crop")
    assets = make_assets(session, project, 10)
    ids = [a.id for a in assets]
    tag_assets(session, [(ids[0], weed.id), (ids[5], weed.id)])

    change = annotation_service.change(
        session=session, project=project, author=user,
        asset_filter=AssetFilter(lacks_tag_ids=(weed.id,)),
        add_tag_ids=[weed.id, crop.id], review_state="labeled",
    )  # fmt: skip
    lacking = [i for i in ids if i not in (ids[0], ids[5])]
    assert change.matched == 8
    assert sorted(a for a, t in change.added if t == weed.id) == lacking
    assert sorted(a for a, t in change.added if t == crop.id) == lacking
    assert change.labeled == lacking, "the review applies to the set the filter named first"


def test_unknown_images_and_tags_are_named(
    session: Session, project: Project, user: User, make_tag: MakeTag
) -> None:
    weed = make_tag("weed")
    old = make_tag("old")
    from app.services import tags as tag_service

    tag_service.update(session=session, project=project, tag=old, archived=True)
    other = project_service.create(session=session, name="Other")
    (foreign,) = make_assets(session, other, 1)
    (mine,) = make_assets(session, project, 1)

    with pytest.raises(NotFound, match=f"image {foreign.id} not found in project 'Crops'"):
        annotation_service.set_tag(
            session=session, project=project, asset_id=foreign.id, tag_id=weed.id,
            present=True, author=user,
        )  # fmt: skip
    with pytest.raises(InvalidInput) as error:
        annotation_service.change(
            session=session, project=project, author=user, asset_ids=[mine.id, foreign.id],
            add_tag_ids=[weed.id],
        )  # fmt: skip
    assert error.value.details == {"missing_asset_ids": [foreign.id]}
    with pytest.raises(InvalidInput, match="tag 999999 is not in project 'Crops'"):
        annotation_service.change(
            session=session, project=project, author=user, asset_ids=[mine.id],
            add_tag_ids=[999999],
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="'old' is archived"):
        annotation_service.set_tag(
            session=session, project=project, asset_id=mine.id, tag_id=old.id, present=True,
            author=user,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="either by 'asset_ids' or by 'filter'"):
        annotation_service.change(
            session=session, project=project, author=user, add_tag_ids=[weed.id]
        )
    with pytest.raises(InvalidInput, match="nothing to change"):
        annotation_service.change(session=session, project=project, author=user, asset_ids=[1])
    assert _tags_of(session, mine) == set(), "a refused request changes nothing"


def test_revert_restores_the_previous_state(
    session: Session, project: Project, user: User, make_tag: MakeTag
) -> None:
    healthy = make_tag("healthy", group="health")
    diseased = make_tag("diseased", group="health")
    weed = make_tag("weed")
    first, second = make_assets(session, project, 2)
    tag_assets(session, [(first.id, healthy.id)])

    change = annotation_service.change(
        session=session, project=project, author=user, asset_ids=[first.id, second.id],
        add_tag_ids=[diseased.id, weed.id], review_state="labeled",
    )  # fmt: skip
    assert _tags_of(session, first) == {diseased.id, weed.id}
    undo = annotation_service.revert(
        session=session, project=project, author=user, added=change.added,
        removed=change.removed, labeled=change.labeled, unlabeled=change.unlabeled,
    )  # fmt: skip
    assert _tags_of(session, first) == {healthy.id}
    assert _tags_of(session, second) == set()
    assert (_state(session, first), _state(session, second)) == ("unlabeled", "unlabeled")
    assert sorted(undo.removed) == sorted(change.added)
    assert undo.added == [(first.id, healthy.id)]

    redo = annotation_service.revert(
        session=session, project=project, author=user, added=undo.added,
        removed=undo.removed, labeled=undo.labeled, unlabeled=undo.unlabeled,
    )  # fmt: skip
    assert _tags_of(session, first) == {diseased.id, weed.id}, "undoing the undo redoes"
    assert redo.labeled == [first.id, second.id]


def test_two_annotators_never_overwrite_each_other(
    session: Session, project: Project, user: User, make_tag: MakeTag
) -> None:
    weed, crop = make_tag("weed"), make_tag("crop")
    (asset,) = make_assets(session, project, 1)
    # Two requests with their own sessions, as two people on two browsers.
    with new_session() as alice, new_session() as bob:
        alice_project = alice.get(Project, project.id)
        bob_project = bob.get(Project, project.id)
        assert alice_project is not None and bob_project is not None
        annotation_service.set_tag(
            session=alice, project=alice_project, asset_id=asset.id, tag_id=weed.id,
            present=True, author=None,
        )  # fmt: skip
        annotation_service.set_tag(
            session=bob, project=bob_project, asset_id=asset.id, tag_id=crop.id,
            present=True, author=None,
        )  # fmt: skip
        # Bob takes off a tag Alice never had: Alice's weed stays.
        annotation_service.change(
            session=bob, project=bob_project, author=None, asset_ids=[asset.id],
            remove_tag_ids=[crop.id],
        )  # fmt: skip
    assert _tags_of(session, asset) == {weed.id}
