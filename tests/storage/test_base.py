"""Key and prefix validation shared by every backend."""

from __future__ import annotations

import pytest

from app.storage.base import InvalidKey, join_prefix, validate_key, validate_prefix


@pytest.mark.parametrize(
    "key",
    ["a", "projects/1/assets/ab12.jpg", "runs/3/best.pt", "names with spaces/é.png", ".hidden"],
)
def test_valid_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/abs", "absolute"),
        ("..", "'..'"),
        ("a/../b", "'..'"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("a\nb", "control"),
        ("a//b", "empty"),
        ("a/", "end with"),
    ],
)
def test_invalid_keys_say_why(key: str, reason: str) -> None:
    with pytest.raises(InvalidKey) as caught:
        validate_key(key)

    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_prefixes() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("projects/1/") == "projects/1/"
    assert validate_prefix("projects/1/as") == "projects/1/as"
    with pytest.raises(InvalidKey):
        validate_prefix("", allow_empty=False)
    with pytest.raises(InvalidKey):
        validate_prefix("projects/../")


def test_join_prefix() -> None:
    assert join_prefix("", "a/b") == "a/b"
    assert join_prefix("polytag", "a/b") == "polytag/a/b"
    assert join_prefix("/polytag/", "a") == "polytag/a"
