"""Reading a live Venus's /metrics the way Prometheus would."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from venus_grpc import Venus

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(venus: Venus) -> Samples:
    """Every sample of Venus's /metrics, by name and labels."""
    assert venus.metrics_port is not None
    url = f"http://127.0.0.1:{venus.metrics_port}/metrics"

    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=10) as reply:
            body: bytes = reply.read()
            return body.decode()

    text = await asyncio.to_thread(fetch)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The series of ``name`` that changed between two scrapes, and by how much."""
    keys = {labels for (n, labels) in (*before, *after) if n == name}
    changes = {labels: after.get((name, labels), 0.0) - before.get((name, labels), 0.0) for labels in keys}
    return {labels: change for labels, change in changes.items() if change}
