"""/api/v1/projects"""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_create_list_rename_describe_delete(api: TestClient) -> None:
    created = api.post("/api/v1/projects", json={"name": "  Weeds  ", "description": "field A"})
    assert created.status_code == 201
    project = created.json()
    assert project["name"] == "Weeds"
    listed = api.get("/api/v1/projects").json()
    assert [p["name"] for p in listed] == ["Weeds"]
    assert listed[0]["image_count"] == 0
    renamed = api.patch(f"/api/v1/projects/{project['id']}", json={"name": "Weeds 2024"})
    assert renamed.json()["name"] == "Weeds 2024"
    assert renamed.json()["description"] == "field A"
    described = api.patch(f"/api/v1/projects/{project['id']}", json={"description": "B"})
    assert described.json() == {**renamed.json(), "description": "B"}

    wrong = api.request(
        "DELETE", f"/api/v1/projects/{project['id']}", json={"confirm_name": "Weeds"}
    )
    assert wrong.status_code == 422
    assert "Weeds 2024" in wrong.json()["detail"]
    deleted = api.request(
        "DELETE", f"/api/v1/projects/{project['id']}", json={"confirm_name": "Weeds 2024"}
    )
    assert deleted.status_code == 204
    assert api.get(f"/api/v1/projects/{project['id']}").status_code == 404


def test_bad_input_names_the_problem(api: TestClient) -> None:
    empty = api.post("/api/v1/projects", json={"name": "   "})
    assert empty.status_code == 422
    assert empty.json()["detail"] == "the project name must not be empty"
    missing = api.get("/api/v1/projects/999")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "project 999 not found"
    assert api.post("/api/v1/projects", json={}).status_code == 422


def test_deleting_a_project_deletes_its_files(
    api: TestClient, celery_worker: object, tmp_path: object
) -> None:
    import time

    from app.deps import get_blob_store

    project = api.post("/api/v1/projects", json={"name": "Doomed"}).json()
    store = get_blob_store()
    key = f"projects/{project['id']}/assets/abc.jpg"
    store.put(key, b"bytes", "image/jpeg")
    other = store.put("projects/999999/assets/keep.jpg", b"keep", "image/jpeg")
    api.request("DELETE", f"/api/v1/projects/{project['id']}", json={"confirm_name": "Doomed"})
    deadline = time.monotonic() + 60
    while store.exists(key) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not store.exists(key)
    assert store.exists(other.key)
