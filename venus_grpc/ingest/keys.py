"""API keys: who may write which apps and categories.

Keys live in a TOML file (a mounted Secret) as SHA-256 hashes, never in clear, each with the app ids
and categories it may write; the file is re-read when it changes. A caller sends its key as
``authorization: Bearer <key>`` or ``x-api-key: <key>``. The interceptor checks it before the
request is even parsed, so a refused call costs almost nothing; the servicer then checks the batch's
app id and category against the key's grant. A key never appears in logs, spans, headers or metrics.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import json
import os
import secrets
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from venus_grpc.ingest.errors import Reason, RequestError, abort
from venus_grpc.obs import metrics
from venus_grpc.settings import Settings, SettingsError

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


_current_grant: contextvars.ContextVar[Grant | None] = contextvars.ContextVar("venus_grant", default=None)


def current_grant() -> Grant | None:
    """The grant of the key that authenticated the running call; ``None`` when keys are off."""
    return _current_grant.get()


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


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses calls without a valid key, except to the public services, before the request is parsed."""

    def __init__(self, key_file: KeyFile, settings: Settings) -> None:
        self._key_file = key_file
        self._public = settings.public_services

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        service = handler_call_details.method.split("/")[1] if handler_call_details.method.count("/") == 2 else ""
        if handler is None or service in self._public:
            return handler
        key = _presented_key(handler_call_details.invocation_metadata or ())
        grant = self._key_file.keys.lookup(key) if key else None
        if grant is None or grant.revoked:
            return _refusal(handler, _unauthenticated(key, grant))
        return _with_grant(handler, grant)


def _unauthenticated(key: str, grant: Grant | None) -> RequestError:
    if not key:
        reason, message = "missing", ("an API key is required: send it as 'authorization: Bearer <key>' "
                                      "or 'x-api-key: <key>' metadata")
    elif grant is None:
        reason, message = "unknown", "the API key is not valid: check that the whole key was sent"
    else:
        reason, message = "revoked", f"the API key {grant.name!r} was revoked: ask for a new one"
    metrics.AUTH_FAILURES.labels(reason).inc()
    log.info("call refused", reason=f"API key {reason}")
    return RequestError(Reason.UNAUTHENTICATED, message)


def _presented_key(metadata: Any) -> str:
    for name, value in metadata:
        if not isinstance(value, str):
            continue
        if name == "authorization" and value[:7].lower() == "bearer ":
            return value[7:].strip()
        if name == "x-api-key":
            return value.strip()
    return ""


def _refusal(handler: grpc.RpcMethodHandler, error: RequestError) -> grpc.RpcMethodHandler:
    # No request deserializer: the bytes of a refused call are never parsed.
    if handler.request_streaming or handler.response_streaming:
        async def refuse_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await abort(context, error)
            yield  # pragma: no cover - makes this an async generator; abort always raises

        return grpc.stream_stream_rpc_method_handler(refuse_stream)

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await abort(context, error)

    return grpc.unary_unary_rpc_method_handler(refuse)


def _with_grant(handler: grpc.RpcMethodHandler, grant: Grant) -> grpc.RpcMethodHandler:
    if handler.request_streaming and handler.response_streaming:
        behavior = handler.stream_stream

        async def stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            token = _current_grant.set(grant)
            try:
                async for response in behavior(requests, context):
                    yield response
            finally:
                _current_grant.reset(token)

        return grpc.stream_stream_rpc_method_handler(stream, request_deserializer=handler.request_deserializer,
                                                     response_serializer=handler.response_serializer)
    if handler.request_streaming or handler.response_streaming:
        return handler  # Venus serves no half-streaming method that needs a key
    unary = handler.unary_unary

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        token = _current_grant.set(grant)
        try:
            return await unary(request, context)
        finally:
            _current_grant.reset(token)

    return grpc.unary_unary_rpc_method_handler(call, request_deserializer=handler.request_deserializer,
                                               response_serializer=handler.response_serializer)


def _strings(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def _listed(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))
