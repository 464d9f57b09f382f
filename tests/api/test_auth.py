"""Every /api/v1 route needs a user; API keys and session cookies both work."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.main import create_app
from app.models import ApiKey


def _api_routes() -> list[tuple[str, str]]:
    """Every /api/v1 operation in the OpenAPI schema, with placeholder ids filled in."""
    routes = []
    for path, operations in create_app().openapi()["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        concrete = re.sub(r"\{[a-z_]+\}", "1", path)
        routes += [(method.upper(), concrete) for method in operations]
    assert len(routes) > 5
    return sorted(routes)


@pytest.mark.parametrize(("method", "path"), _api_routes())
def test_every_api_route_refuses_anonymous_callers(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 401, (method, path, response.text)
    assert "sign in" in response.json()["detail"] or "API key" in response.json()["detail"]


def test_health_needs_no_auth(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text


def test_api_key_authenticates_and_is_stored_hashed(
    client: TestClient, api_key: str, session: Session
) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200
    assert response.json()["email"] == "admin@example.com"
    stored = session.scalars(select(ApiKey)).one()
    assert api_key.split("_")[-1] not in stored.secret_hash
    assert stored.secret_hash != api_key


def test_wrong_and_revoked_keys_are_refused(api: TestClient, api_key: str) -> None:
    bad = api.get("/api/v1/me", headers={"Authorization": api_key[:-2] + "xx"})
    assert bad.status_code == 401
    created = api.post("/api/v1/api-keys", json={"name": "ci"}).json()
    assert created["key"].startswith("pt_")
    listed = api.get("/api/v1/api-keys").json()
    assert all("key" not in item for item in listed), "a listing must never return the secret"
    assert api.delete(f"/api/v1/api-keys/{created['id']}").status_code == 204
    revoked = api.get("/api/v1/me", headers={"Authorization": f"Bearer {created['key']}"})
    assert revoked.status_code == 401
    assert revoked.json()["detail"] == "invalid or revoked API key"


def test_session_writes_need_the_csrf_token(browser_client: TestClient) -> None:
    ok = browser_client.post("/api/v1/projects", json={"name": "With token"})
    assert ok.status_code == 201
    del browser_client.headers["X-CSRF-Token"]
    refused = browser_client.post("/api/v1/projects", json={"name": "No token"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    # Reads need no token.
    assert browser_client.get("/api/v1/projects").status_code == 200


def test_only_admins_manage_users(api: TestClient) -> None:
    created = api.post(
        "/api/v1/users", json={"email": "bob@example.com", "password": "longenough1"}
    )
    assert created.status_code == 201
    assert api.post("/api/v1/users", json={"email": "bob@example.com", "password": "x" * 9}).json()[
        "detail"
    ] == "an account with email 'bob@example.com' already exists"
