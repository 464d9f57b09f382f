"""/api/v1/projects/{id}/tags"""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.models import Project


def _url(project: Project) -> str:
    return f"/api/v1/projects/{project.id}/tags"


def test_create_edit_reorder_archive(api: TestClient, project: Project) -> None:
    ids = []
    for name, hotkey in (("weed", "w"), ("crop", "c"), ("soil", "s")):
        response = api.post(_url(project), json={"name": name, "hotkey": hotkey})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    tags = api.get(_url(project)).json()
    assert [(t["name"], t["hotkey"], t["position"]) for t in tags] == [
        ("weed", "w", 0), ("crop", "c", 1), ("soil", "s", 2),
    ]
    edited = api.patch(
        f"{_url(project)}/{ids[0]}",
        json={"name": "Weed", "color": "#FF0000", "group": "plant", "hotkey": None},
    ).json()
    assert (edited["name"], edited["color"], edited["group"], edited["hotkey"]) == (
        "Weed", "#ff0000", "plant", None,
    )
    reordered = api.put(f"{_url(project)}/order", json={"tag_ids": [ids[2], ids[0], ids[1]]})
    assert [t["name"] for t in reordered.json()] == ["soil", "Weed", "crop"]
    archived = api.patch(f"{_url(project)}/{ids[1]}", json={"archived": True}).json()
    assert archived["archived"] is True
    active = api.get(_url(project), params={"include_archived": False}).json()
    assert [t["name"] for t in active] == ["soil", "Weed"]


def test_names_are_unique_case_insensitively(api: TestClient, project: Project) -> None:
    assert api.post(_url(project), json={"name": "Weed"}).status_code == 201
    duplicate = api.post(_url(project), json={"name": "wEED"})
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"] == "a tag named 'Weed' already exists in project 'Crops'"
    other = api.post("/api/v1/projects", json={"name": "Other"}).json()
    same_name = api.post(f"/api/v1/projects/{other['id']}/tags", json={"name": "weed"})
    assert same_name.status_code == 201


def test_bad_tag_input_names_the_problem(api: TestClient, project: Project) -> None:
    empty = api.post(_url(project), json={"name": " "})
    assert (empty.status_code, empty.json()["detail"]) == (422, "the tag name must not be empty")
    api.post(_url(project), json={"name": "weed", "hotkey": "w"})
    taken = api.post(_url(project), json={"name": "wild", "hotkey": "W"})
    assert (taken.status_code, taken.json()["detail"]) == (
        409, "hotkey 'w' is already used by tag 'weed'",
    )
    reserved = api.post(_url(project), json={"name": "apple", "hotkey": "a"})
    assert reserved.status_code == 422
    assert "reserved" in reserved.json()["detail"]
    color = api.post(_url(project), json={"name": "x", "color": "red"})
    assert color.json()["detail"] == "color 'red' must look like #4f7cff"
    unknown = api.post("/api/v1/projects/4242/tags", json={"name": "weed"})
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "project 4242 not found")
    tag_missing = api.patch(f"{_url(project)}/999", json={"name": "x"})
    assert tag_missing.json()["detail"] == "tag 999 not found in project 'Crops'"
    incomplete = api.put(f"{_url(project)}/order", json={"tag_ids": []})
    assert incomplete.json()["detail"] == "the order leaves out tag 'weed'"
