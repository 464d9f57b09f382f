"""Setup page -> login -> create project -> three tags with hotkeys -> order kept after reload."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_first_run_to_tags(page: Any) -> None:
    page.goto("/")
    assert page.url.endswith("/setup"), "with no account the first visit shows setup"
    page.fill("input[name=email]", "owner@example.com")
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    assert "Welcome to Polytag" in page.content()

    # Signing out and in again goes through the login page, not setup.
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    page.goto("/setup")
    assert page.url.endswith("/login"), "setup is one-time"
    page.fill("input[name=email]", "owner@example.com")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator("text=wrong email or password").is_visible()
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    page.fill("#new-project input[name=name]", "Orchard")
    page.click("#new-project button[type=submit]")
    page.wait_for_url("**/projects/*")
    assert page.locator("h1").first.inner_text() == "Orchard"

    for name, hotkey in (("apple", "1"), ("pear", "2"), ("plum", "3")):
        page.fill("#new-tag input[name=name]", name)
        page.fill("#new-tag input[name=hotkey]", hotkey)
        page.click("#new-tag button[type=submit]")
        page.locator(f"#tags input.tag-name[value='{name}']").wait_for()

    # A duplicate name is refused with a message that names it.
    page.fill("#new-tag input[name=name]", "APPLE")
    page.click("#new-tag button[type=submit]")
    page.locator("#tag-error").wait_for(state="visible")
    assert "a tag named 'apple' already exists" in page.locator("#tag-error").inner_text()

    page.reload()
    names = page.locator("#tags input.tag-name").evaluate_all("els => els.map(e => e.value)")
    hotkeys = page.locator("#tags input.tag-hotkey").evaluate_all("els => els.map(e => e.value)")
    assert names == ["apple", "pear", "plum"]
    assert hotkeys == ["1", "2", "3"]

    # Reorder: move plum up twice; the order survives a reload.
    page.click("button[aria-label='Move plum up']")
    page.wait_for_function(
        "() => document.querySelectorAll('#tags input.tag-name')[1].value === 'plum'"
    )
    page.click("button[aria-label='Move plum up']")
    page.wait_for_function(
        "() => document.querySelectorAll('#tags input.tag-name')[0].value === 'plum'"
    )
    page.reload()
    names = page.locator("#tags input.tag-name").evaluate_all("els => els.map(e => e.value)")
    assert names == ["plum", "apple", "pear"]
