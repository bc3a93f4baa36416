"""The keys file: parsing, lookup by hash, and what a grant allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from venus_grpc.ingest.keys import ApiKeys, KeyFile, hash_key, key_entry, new_key
from venus_grpc.settings import SettingsError


def test_an_entry_made_by_key_entry_finds_its_key_and_nothing_else() -> None:
    """The file holds only the hash, and lookup finds the key by it."""
    key = new_key()
    text = key_entry("ios", key, ["shop-ios"], ["*"])
    assert key not in text and hash_key(key) in text
    keys = ApiKeys.parse(text)
    grant = keys.lookup(key)
    assert grant is not None and grant.name == "ios"
    assert keys.lookup(new_key()) is None
    assert keys.lookup(key[:-1]) is None


def test_a_grant_names_what_it_does_not_cover() -> None:
    """Refusals say which app id or category is not covered and what is."""
    key = new_key()
    grant = ApiKeys.parse(key_entry("ios", key, ["shop-ios"], ["CRASH", "PERF"])).lookup(key)
    assert grant is not None
    assert grant.refusal("shop-ios", "CRASH") is None
    assert grant.refusal("shop-android", "CRASH") == (
        "the API key 'ios' may not write app_id 'shop-android' (it may write: shop-ios)")
    assert grant.refusal("shop-ios", "LOGS") == (
        "the API key 'ios' may not write category 'LOGS' (it may write: CRASH, PERF)")


@pytest.mark.parametrize(("text", "message"), [
    ('[[keys]]\nsha256 = "abc"\napp_ids = ["a"]\n', "keys[0]: sha256 must be the 64 hex digits"),
    (f'[[keys]]\nsha256 = "{"a" * 64}"\n', "keys[0]: app_ids and categories must be non-empty lists"),
    (f'[[keys]]\nsha256 = "{"a" * 64}"\napp_ids = ["a"]\n' * 2, "keys[1]: the same key is listed twice"),
    ("[[keys]\n", "Expected"),
])
def test_a_broken_keys_file_says_what_is_wrong(text: str, message: str) -> None:
    """Each mistake in the file is reported with the entry it is in."""
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ApiKeys.parse(text)


def test_a_missing_keys_file_fails_at_startup_naming_the_setting(tmp_path: Path) -> None:
    """Venus does not start with a keys file it cannot read."""
    with pytest.raises(SettingsError, match="VENUS_API_KEYS_PATH="):
        KeyFile(str(tmp_path / "absent.toml"))
