"""/api/v1/projects/{id}/assets (listing), /annotations (single, bulk, revert) and /stats."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Project, Tag
from tests.fixtures.annotating import make_asset, make_assets, tag_assets

MakeTag = Callable[..., Tag]


def _base(project: Project) -> str:
    return f"/api/v1/projects/{project.id}"


def test_listing_filters_pages_and_counts(
    api: TestClient, session: Session, project: Project, make_tag: MakeTag
) -> None:
    weed, crop = make_tag("weed"), make_tag("crop")
    assets = make_assets(session, project, 5)
    ids = [a.id for a in assets]
    no_thumb = make_asset(session, project, thumb_key=None, original_filename="raw.tif")
    tag_assets(session, [(ids[0], weed.id), (ids[1], weed.id), (ids[1], crop.id)])

    page = api.get(f"{_base(project)}/assets", params={"limit": 2, "counts": True})
    assert page.status_code == 200, page.text
    body = page.json()
    assert [item["id"] for item in body["items"]] == ids[:2]
    assert (body["total"], body["offset"], body["has_next"], body["has_previous"]) == (
        6, 0, True, False,
    )  # fmt: skip
    assert body["items"][1]["tag_ids"] == sorted([weed.id, crop.id])
    assert body["items"][0]["thumb_url"] == f"{_base(project)}/assets/{ids[0]}/thumb"
    assert body["items"][0]["file_url"] == f"{_base(project)}/assets/{ids[0]}/file"
    assert body["counts"]["tags"] == {str(weed.id): 2, str(crop.id): 1}
    assert (body["counts"]["images"], body["counts"]["unlabeled"]) == (6, 6)

    after = api.get(f"{_base(project)}/assets", params={"limit": 2, "after": ids[1]}).json()
    assert [i["id"] for i in after["items"]] == ids[2:4]
    assert after["counts"] is None
    has_weed = api.get(f"{_base(project)}/assets", params={"has": [weed.id]}).json()
    assert [i["id"] for i in has_weed["items"]] == ids[:2]
    lacking = api.get(f"{_base(project)}/assets", params={"lacks": [weed.id], "q": "RAW"}).json()
    assert [(i["id"], i["thumb_url"]) for i in lacking["items"]] == [
        (no_thumb.id, f"{_base(project)}/assets/{no_thumb.id}/file")
    ]
    bad = api.get(f"{_base(project)}/assets", params={"has": [987654]})
    assert (bad.status_code, bad.json()["detail"]) == (
        422, "tag 987654 is not in project 'Crops'",
    )  # fmt: skip
    assert api.get(f"{_base(project)}/assets", params={"limit": 501}).status_code == 422


def test_single_bulk_and_revert(
    api: TestClient, session: Session, project: Project, make_tag: MakeTag
) -> None:
    healthy = make_tag("healthy", group="health")
    sick = make_tag("sick", group="health")
    ids = [a.id for a in make_assets(session, project, 4)]

    one = api.post(f"{_base(project)}/annotations", json={"asset_id": ids[0], "tag_id": healthy.id})
    assert one.status_code == 200, one.text
    assert one.json()["added"] == [[ids[0], healthy.id]]
    assert one.json()["labeled"] == [ids[0]]
    assert one.json()["assets"] == [
        {"id": ids[0], "review_state": "labeled", "tag_ids": [healthy.id]}
    ]

    bulk = api.post(
        f"{_base(project)}/annotations/bulk", json={"asset_ids": ids[:3], "add": [sick.id]}
    ).json()
    assert bulk["added"] == [[i, sick.id] for i in ids[:3]]
    assert bulk["removed"] == [[ids[0], healthy.id]], "the group rival went"
    assert bulk["matched"] == 3

    by_filter = api.post(
        f"{_base(project)}/annotations/bulk",
        json={"filter": {"lacks": [sick.id]}, "review_state": "labeled"},
    ).json()
    assert (by_filter["matched"], by_filter["labeled"]) == (1, [ids[3]])

    undo = api.post(f"{_base(project)}/annotations/revert", json=bulk)
    assert undo.status_code == 200, undo.text
    states = {s["id"]: s["tag_ids"] for s in undo.json()["assets"]}
    assert states == {ids[0]: [healthy.id], ids[1]: [], ids[2]: []}


def test_bad_changes_get_clear_errors(
    api: TestClient, session: Session, project: Project, make_tag: MakeTag
) -> None:
    weed = make_tag("weed")
    other = api.post("/api/v1/projects", json={"name": "Other"}).json()
    foreign = make_asset(session, session.get(Project, other["id"]))  # type: ignore[arg-type]
    (mine,) = make_assets(session, project, 1)

    missing = api.post(
        f"{_base(project)}/annotations", json={"asset_id": foreign.id, "tag_id": weed.id}
    )
    assert (missing.status_code, missing.json()["detail"]) == (
        404, f"image {foreign.id} not found in project 'Crops'",
    )  # fmt: skip
    mixed = api.post(
        f"{_base(project)}/annotations/bulk",
        json={"asset_ids": [mine.id, foreign.id], "add": [weed.id]},
    )
    assert mixed.status_code == 422
    assert mixed.json()["details"] == {"missing_asset_ids": [foreign.id]}
    both = api.post(
        f"{_base(project)}/annotations/bulk",
        json={"asset_ids": [mine.id], "add": [weed.id], "remove": [weed.id]},
    )
    assert (both.status_code, both.json()["detail"]) == (
        422, f"tag {weed.id} cannot be added and removed at once",
    )  # fmt: skip
    wrong_state = api.post(
        f"{_base(project)}/annotations/bulk",
        json={"asset_ids": [mine.id], "review_state": "maybe"},
    )
    assert wrong_state.status_code == 422


def test_changes_need_auth_and_csrf(
    client: TestClient, session: Session, project: Project, make_tag: MakeTag
) -> None:
    weed = make_tag("weed")
    (asset,) = make_assets(session, project, 1)
    body = {"asset_id": asset.id, "tag_id": weed.id}
    assert client.post(f"{_base(project)}/annotations", json=body).status_code == 401
    assert client.get(f"{_base(project)}/stats").status_code == 401

    from tests.conftest import sign_in

    token = sign_in(client)
    no_token = client.post(f"{_base(project)}/annotations", json=body)
    assert no_token.status_code == 403
    with_token = client.post(
        f"{_base(project)}/annotations", json=body, headers={"X-CSRF-Token": token}
    )
    assert with_token.status_code == 200


def test_stats(api: TestClient, session: Session, project: Project, make_tag: MakeTag) -> None:
    weed, crop = make_tag("weed"), make_tag("crop")
    a, b = make_assets(session, project, 2, review_state="labeled")
    make_asset(session, project)
    tag_assets(session, [(a.id, weed.id), (a.id, crop.id), (b.id, weed.id)])
    stats = api.get(f"{_base(project)}/stats")
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert (body["images"], body["labeled"], body["unlabeled"]) == (3, 2, 1)
    assert [(t["name"], t["positives"]) for t in body["tags"]] == [("weed", 2), ("crop", 1)]
    assert body["labels_per_image"] == [[0, 0], [1, 1], [2, 1]]
    assert body["cooccurrence"] == [[2, 1], [1, 1]]
    assert api.get("/api/v1/projects/999999/stats").status_code == 404
