"""How every Kafka client of Venus is made, started and stopped: one set of options for all of them.

The event producer (venus_grpc.kafka), the dead-letter producer, log shipping and the operator tools all
take their security options, compression check and bounded stop from here.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer, codec
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from venus_grpc.settings import Settings, SettingsError, invalid

# What aiokafka's producer asks before it accepts a compression_type (it raises at construction otherwise).
_CODEC_AVAILABLE = {"gzip": codec.has_gzip, "lz4": codec.has_lz4, "zstd": codec.has_zstd, "snappy": codec.has_snappy}
log = structlog.get_logger(__name__)


def new_producer(settings: Settings, *, bootstrap: str = "", client_id: str = "") -> AIOKafkaProducer:
    """A producer with Venus's delivery settings (``acks="all"``, batching, compression, security).

    ``bootstrap`` and ``client_id`` default to the settings' own; another cluster or a suffixed id serve
    a producer of Venus's that is not the event path (dead letters).
    """
    s = settings
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap or s.kafka_bootstrap,
        client_id=client_id or s.kafka_client_id,
        acks="all",
        linger_ms=s.kafka_linger_ms,
        max_batch_size=s.kafka_max_batch_bytes,
        max_request_size=s.kafka_max_batch_bytes,
        compression_type=None if s.kafka_compression == "none" else s.kafka_compression,
        request_timeout_ms=s.kafka_request_timeout_ms,
        **security_options(s),
    )


def check_compression(settings: Settings) -> None:
    """Refuse a ``kafka_compression`` whose codec library is missing: every producer would fail to construct."""
    name = settings.kafka_compression
    if name != "none" and not _CODEC_AVAILABLE[name]():
        problem = f"aiokafka finds no {name} codec (the cramjam package is missing)"
        fix = "install Venus with its dependencies (pip install venus-gateway pulls aiokafka[lz4,snappy,zstd]), " \
              "or choose none or gzip"
        raise SettingsError(f"VENUS_KAFKA_COMPRESSION={name!r} cannot be used: {problem}; {fix}",
                            field="kafka_compression", expected=f"a codec whose library is installed: {problem}; {fix}")


async def started(new: Callable[[], AIOKafkaProducer], *, bootstrap: str, retry_s: float,
                  purpose: str) -> AIOKafkaProducer:
    """A producer made by ``new`` and started, trying again every ``retry_s`` until the broker answers."""
    while True:
        producer = new()
        try:
            await producer.start()
        except KafkaError as exc:
            log.warning("kafka not reachable; retrying", purpose=purpose, bootstrap=bootstrap, error=str(exc),
                        retry_in_s=retry_s)
            await stop_bounded(producer, timeout_s=retry_s)
            await asyncio.sleep(retry_s)
            continue
        except asyncio.CancelledError:  # shutdown while connecting: close what start() opened
            await stop_bounded(producer, timeout_s=retry_s)
            raise
        return producer


def consumer_options(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """aiokafka consumer keyword arguments of the tools: the cluster at ``bootstrap``, read with the Kafka security
    settings, in no consumer group and committing nothing (a tool reads; it never moves a group's offsets)."""
    return {"bootstrap_servers": bootstrap, "group_id": None, "enable_auto_commit": False,
            **security_options(settings)}


def security_options(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for the cluster's TLS and SASL settings (none for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings.kafka_ssl_ca_path)
    if protocol.startswith("SASL"):
        options |= {"sasl_mechanism": settings.kafka_sasl_mechanism,
                    "sasl_plain_username": settings.kafka_sasl_username,
                    "sasl_plain_password": settings.kafka_sasl_password}
    return options


def _ssl_context(ca_path: str) -> ssl.SSLContext:
    """TLS towards the brokers, trusting ``ca_path`` (empty: the system's CAs); a CA file that cannot be used is a
    bad setting, named, rather than a traceback from every client that needs it."""
    try:
        context: ssl.SSLContext = create_ssl_context(cafile=ca_path or None)
    except OSError as exc:  # a missing or unreadable file, or one that is not PEM (ssl.SSLError is an OSError)
        raise invalid("kafka_ssl_ca_path", ca_path, f"a readable PEM file of the brokers' CA ({exc})") from None
    return context


class _Stoppable(Protocol):
    """An aiokafka producer or consumer: anything with an awaitable ``stop()``."""

    def stop(self) -> Awaitable[None]: ...


async def stop_within(client: _Stoppable, timeout_s: float) -> None:
    """Stop ``client``, giving up with TimeoutError after ``timeout_s``.

    aiokafka's ``stop()`` can hang when the broker is down or went away (aiokafka#1101), so every
    stop of a producer or consumer is bounded: a shutdown or a read-back must not wait forever.
    """
    await asyncio.wait_for(client.stop(), timeout=timeout_s)


async def stop_bounded(producer: AIOKafkaProducer, *, timeout_s: float) -> None:
    """Stop ``producer`` within ``timeout_s``, logging rather than raising when it does not stop cleanly."""
    try:
        await stop_within(producer, timeout_s)
    except (TimeoutError, KafkaError) as exc:
        log.warning("kafka producer did not stop cleanly", error=repr(exc))
