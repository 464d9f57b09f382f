"""Setup, sign-in and sign-out pages."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import User
from app.services import users as user_service
from tests.conftest import PASSWORD, sign_in


def _form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_setup_is_shown_once_then_login(client: TestClient, session: Session) -> None:
    first = client.get("/", follow_redirects=False)
    assert (first.status_code, first.headers["location"]) == (303, "/setup")
    token = _form_token(client.get("/setup").text)
    created = client.post(
        "/setup",
        data={"email": "Root@Example.com", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert created.status_code == 303
    admin = user_service.get_all(session=session)
    assert [(u.email, u.is_admin) for u in admin] == [("root@example.com", True)]
    assert admin[0].password_hash.startswith("$argon2")
    assert client.get("/").status_code == 200  # signed in by setup

    other = TestClient(client.app)
    assert other.get("/setup", follow_redirects=False).headers["location"] == "/login"
    again = other.post(
        "/setup",
        data={"email": "x@example.com", "password": PASSWORD,
              "csrf_token": _form_token(other.get("/login").text)},
    )
    assert again.status_code == 409
    assert len(user_service.get_all(session=session)) == 1


def test_forms_without_csrf_token_are_refused(client: TestClient, user: User) -> None:
    client.get("/login")
    refused = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 403
    assert "CSRF" in refused.text


def test_pages_redirect_to_login_and_back(client: TestClient, user: User) -> None:
    response = client.get("/settings", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/settings"
    sign_in(client)
    assert "API keys" in client.get("/settings").text


def test_login_never_redirects_off_site(client: TestClient, user: User) -> None:
    token = _form_token(client.get("/login").text)
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token,
              "next": "//evil.example.com/"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_templates_escape_user_text(browser_client: TestClient) -> None:
    created = browser_client.post(
        "/api/v1/projects", json={"name": "<script>alert(1)</script>"}
    ).json()
    html = browser_client.get("/").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = browser_client.get(f"/projects/{created['id']}").text
    assert "<script>alert(1)</script>" not in page
