"""API keys: who may write which apps and categories.

Keys live in a TOML file (a mounted Secret) as SHA-256 hashes, never in clear, each with the app ids
and categories it may write; the file is re-read when it changes. A caller sends its key as
``authorization: Bearer <key>`` or ``x-api-key: <key>``. A transport checks it (:func:`authenticate`)
before the request is even parsed, so a refused call costs almost nothing; admission then checks the
batch's app id and category against the key's grant (:func:`authorize`). A key never appears in logs,
spans, headers or metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from venus_grpc.ingest.errors import Reason, RequestError
from venus_grpc.settings import SettingsError

log = structlog.get_logger(__name__)
ANY = "*"
KEY_PREFIX = "vk_"


@dataclass(frozen=True, slots=True)
class Grant:
    """What one key may do. ``*`` in a list allows any app id or category."""

    name: str
    sha256: str
    app_ids: frozenset[str]
    categories: frozenset[str]
    revoked: bool = False

    def refusal(self, app_id: str, category: str) -> str | None:
        """Why this key may not write ``app_id``/``category``, or ``None`` when it may."""
        if ANY not in self.app_ids and app_id not in self.app_ids:
            return f"the API key {self.name!r} may not write app_id {app_id!r} (it may write: {_listed(self.app_ids)})"
        if ANY not in self.categories and category not in self.categories:
            return (f"the API key {self.name!r} may not write category {category!r} "
                    f"(it may write: {_listed(self.categories)})")
        return None


def hash_key(key: str) -> str:
    """The hex SHA-256 stored for ``key``. Keys are long random strings, so no salt is needed."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A new random key: 256 bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_entry(name: str, key: str, app_ids: list[str], categories: list[str]) -> str:
    """The keys-file entry for ``key``: its hash and grant, never the key itself."""

    def toml_list(values: list[str]) -> str:
        return "[" + ", ".join(json.dumps(v) for v in values) + "]"

    return (f"[[keys]]\nname = {json.dumps(name)}\nsha256 = \"{hash_key(key)}\"\n"
            f"app_ids = {toml_list(app_ids)}\ncategories = {toml_list(categories)}\n")


class ApiKeys:
    """The keys of one version of the keys file, looked up by hash."""

    def __init__(self, grants: Mapping[str, Grant]) -> None:
        self._grants = dict(grants)

    def __len__(self) -> int:
        return len(self._grants)

    @classmethod
    def parse(cls, text: str) -> ApiKeys:
        """Read the TOML text of a keys file; ``ValueError`` says which entry is wrong and why."""
        document = tomllib.loads(text)
        grants: dict[str, Grant] = {}
        for index, entry in enumerate(document.get("keys", [])):
            where = f"keys[{index}]"
            digest = str(entry.get("sha256", "")).lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"{where}: sha256 must be the 64 hex digits of the key's SHA-256")
            app_ids, categories = entry.get("app_ids"), entry.get("categories", [ANY])
            if not _strings(app_ids) or not _strings(categories):
                raise ValueError(f"{where}: app_ids and categories must be non-empty lists of strings")
            if digest in grants:
                raise ValueError(f"{where}: the same key is listed twice")
            grants[digest] = Grant(name=str(entry.get("name", f"key {index}")), sha256=digest,
                                   app_ids=frozenset(app_ids), categories=frozenset(categories),
                                   revoked=bool(entry.get("revoked", False)))
        return cls(grants)

    def lookup(self, key: str) -> Grant | None:
        """The grant of ``key``, or ``None`` for an unknown key.

        Keys are found by their SHA-256, so lookup timing can at most tell how much of a digest
        matched, which says nothing about any key; the final check is a constant-time comparison.
        """
        digest = hash_key(key)
        grant = self._grants.get(digest)
        if grant is None or not hmac.compare_digest(grant.sha256, digest):
            return None
        return grant


class KeyFile:
    """The keys file and its current contents, reloaded when the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self.keys = ApiKeys({})
        try:
            self.reload()
        except (OSError, ValueError) as exc:
            raise SettingsError(f"VENUS_API_KEYS_PATH={path!r} cannot be used: {exc}", field="api_keys_path",
                                expected="a readable TOML file of [[keys]] entries") from None

    def reload(self) -> bool:
        """Read the file again if it changed; ``True`` when new keys are in use."""
        st = os.stat(self.path)
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        if stamp == self._stamp:
            return False
        with open(self.path, encoding="utf-8") as f:
            keys = ApiKeys.parse(f.read())
        self.keys, self._stamp = keys, stamp
        return True

    async def watch(self, interval_s: float) -> None:
        """Reload every ``interval_s``; a broken file is logged and the previous keys stay in use."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                if self.reload():
                    log.info("API keys reloaded", keys=len(self.keys))
            except (OSError, ValueError) as exc:
                log.error("API keys file cannot be used; keeping the previous keys", error=str(exc))


def authenticate(keys: ApiKeys, headers: Iterable[tuple[str, Any]]) -> Grant:
    """The grant of the key in ``headers``, or the UNAUTHENTICATED error that refuses the call."""
    key = presented_key(headers)
    grant = keys.lookup(key) if key else None
    if grant is not None and not grant.revoked:
        return grant
    if not key:
        raise RequestError(Reason.KEY_MISSING, "an API key is required: send it as 'authorization: Bearer <key>' "
                                               "or 'x-api-key: <key>'")
    if grant is None:
        raise RequestError(Reason.KEY_UNKNOWN, "the API key is not valid: check that the whole key was sent")
    raise RequestError(Reason.KEY_REVOKED, f"the API key {grant.name!r} was revoked: ask for a new one")


def authorize(grant: Grant | None, app_id: str, category: str) -> None:
    """Raise PERMISSION_DENIED unless ``grant`` covers ``app_id`` and ``category`` (``None``: keys are off)."""
    refusal = grant.refusal(app_id, category) if grant is not None else None
    if refusal is not None:
        raise RequestError(Reason.PERMISSION_DENIED, refusal)


def presented_key(headers: Iterable[tuple[str, Any]]) -> str:
    """The key sent as ``authorization: Bearer <key>`` or ``x-api-key: <key>`` (lower-case names), or ""."""
    for name, value in headers:
        if not isinstance(value, str):
            continue
        if name == "authorization" and value[:7].lower() == "bearer ":
            return value[7:].strip()
        if name == "x-api-key":
            return value.strip()
    return ""


def _strings(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def _listed(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))
