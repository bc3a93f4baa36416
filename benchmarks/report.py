"""Readable tables for stdout and the JSON file.

The Venus table answers "how fast, how slow per RPC, at what CPU and memory cost, and how close
to what this machine allows"; the ceilings table shows which side (gRPC or Kafka) sets the limit;
``busy`` columns (cores used by Venus / Tansu / the load driver) show who saturated first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.records import Overload, Point, RunRecord, refused_p99_text, resource_exhausted_share


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Right-aligned columns under a header line."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _errors(run: RunRecord) -> str:
    items = sorted(run.errors.items(), key=lambda kv: -kv[1])
    event_errors = run.measured.result.get("event_errors", {})
    items += sorted(event_errors.items(), key=lambda kv: -kv[1])
    return ",".join(f"{k.removeprefix('EVENT_CODE_')}:{v}" for k, v in items) or "-"


def _busy(run: RunRecord) -> str:
    return "/".join(f"{run.busy(name):.2f}" for name in ("service", "broker", "driver", "others"))


def venus_table(points: Sequence[Point]) -> str:
    """One row per sweep point with a Venus run."""
    rows = []
    for p in points:
        v = p.venus
        if v is None:
            rows.append([str(p.batch), str(p.concurrency), "failed", *[""] * 10])
            continue
        lat = v.latency_ms
        rows.append([
            str(p.batch), str(p.concurrency), f"{v.eps:,.0f}", f"{v.rps:,.0f}",
            f"{lat['p50']:.1f}", f"{lat['p90']:.1f}", f"{lat['p99']:.1f}",
            f"{v.cpu_us_per_event():.0f}", f"{v.peak_rss_mib():.0f}", _busy(v),
            f"{p.ratio:.2f}" if p.ceiling_eps else "-", _errors(v),
            v.verdict.text() if v.verdict else "-",
        ])
    return table(["batch", "conc", "events/s", "RPC/s", "p50ms", "p90ms", "p99ms", "CPUµs/ev", "RSS MiB",
                   "busy v/k/l/o", "÷ceiling", "errors", "in Kafka"], rows)


def ceiling_table(points: Sequence[Point]) -> str:
    """One row per sweep point: both ceilings (the broker's per producer API) and which is lower."""
    rows = []
    for p in points:
        t, b = p.transport, p.broker
        by_api = [f"{p.brokers[api].eps:,.0f}" if api in p.brokers else "-" for api in ("send", "batch")]
        rows.append([
            str(p.batch), str(p.concurrency),
            f"{t.eps:,.0f}" if t else "failed", f"{t.cpu_us_per_event():.0f}" if t else "",
            f"{t.busy('driver'):.2f}" if t else "",
            *by_api, f"{b.cpu_us_per_event():.0f}" if b else "", f"{b.cpu_us_per_event('broker'):.0f}" if b else "",
            f"{p.ceiling_name} {p.ceiling_eps:,.0f}" if p.ceiling_eps else "-",
            f"{p.venus.cpu_us_per_event('broker'):.0f}" if p.venus else "",
            "/".join(f"{r.busy('others'):.2f}" if r else "-" for r in (t, b)),
        ])
    return table(["batch", "conc", "transport ev/s", "srv µs/ev", "load busy", "broker send ev/s", "batch ev/s",
                   "producer µs/ev", "tansu µs/ev", "lower ceiling", "tansu µs/ev in Venus run", "others t/b"], rows)


def best(points: Sequence[Point]) -> Point | None:
    """The point where Venus answered the most events per second."""
    ran = [p for p in points if p.venus is not None]
    return max(ran, key=lambda p: p.venus.eps if p.venus else 0.0) if ran else None


def best_line(points: Sequence[Point]) -> str:
    """One sentence about the best point."""
    top = best(points)
    if top is None or top.venus is None:
        return "Best: no Venus run completed."
    return (f"Best: {top.venus.eps:,.0f} events/s at batch {top.batch}, concurrency {top.concurrency} "
            f"({top.ratio:.2f} of the lower ceiling, {top.ceiling_name} {top.ceiling_eps:,.0f} events/s; "
            f"{top.venus.cpu_us_per_event():.0f} CPU µs/event in Venus)")


def overload_text(ov: Overload) -> str:
    """A few lines about the open-loop overload run."""
    if ov.run is None:
        return f"Overload: not run ({ov.error})"
    r = ov.run
    res = r.measured.result
    others = {k: v for k, v in r.errors.items() if k != "RESOURCE_EXHAUSTED"}
    half = ov.half
    half_line = (f"At half capacity ({half.offered_eps:,.0f} events/s offered, open loop): {half.eps:,.0f} events/s, "
                 f"p50 {half.latency_ms['p50']:.0f} ms, p90 {half.latency_ms['p90']:.0f} ms, "
                 f"p99 {half.latency_ms['p99']:.0f} ms" if half is not None else "At half capacity: not run")
    return "\n".join([
        half_line,
        f"Overload at batch {r.batch}: capacity {ov.capacity_eps:,.0f} events/s, offered {r.offered_eps:,.0f} "
        f"events/s ({ov.factor:g}x, open loop, at most {res['max_outstanding']} RPCs outstanding)",
        f"  goodput {r.eps:,.0f} events/s ({r.eps / ov.capacity_eps:.2f} of capacity); "
        f"RESOURCE_EXHAUSTED {resource_exhausted_share(r):.1%} of {res['rpcs']:,} RPCs; "
        f"other errors {others or 'none'}; dropped by the client's cap {res['client_dropped']:,}",
        f"  accepted RPCs p50 {r.latency_ms['p50']:.0f} ms, p99 {r.latency_ms['p99']:.0f} ms; refused RPCs p99 "
        f"{res['refused_latency_ms']['p99']:.1f} ms; "
        f"peak RSS {r.peak_rss_mib():.0f} MiB; {r.cpu_us_per_event():.0f} CPU µs/event; busy v/k/l/o {_busy(r)}; "
        f"in Kafka {r.verdict.text() if r.verdict else '-'}",
        baseline_text(ov.baseline),
    ])


def baseline_text(baseline: Overload | None) -> str:
    """The bare server doing Venus's CPU per call under the same overload: what grpc.aio itself allows."""
    if baseline is None or baseline.work is None:
        return "Baseline (bare server with Venus's CPU per call): not run"
    work = baseline.work
    head = (f"Baseline, the bare server burning {work.cpu_us:,.0f} µs CPU per call (Venus's beyond it) and refusing "
            f"past {work.refuse_past} calls in flight per process")
    if baseline.run is None:
        return f"{head}: not run ({baseline.error})"
    r = baseline.run
    res = r.measured.result
    return "\n".join([
        f"{head}: capacity {baseline.capacity_eps:,.0f} events/s, offered {r.offered_eps:,.0f} ({baseline.factor:g}x)",
        f"  goodput {r.eps / baseline.capacity_eps:.2f} of its capacity; RESOURCE_EXHAUSTED "
        f"{resource_exhausted_share(r):.1%} of {res['rpcs']:,} RPCs; accepted RPCs p50 {r.latency_ms['p50']:.0f} ms, "
        f"p99 {r.latency_ms['p99']:.0f} ms; {refused_p99_text(r)}",
    ])



def stream_text(stream: RunRecord | None, unary: RunRecord | None) -> str:
    """StreamEvents beside UploadEvents at the same batch size and batches in flight."""
    if stream is None:
        return "StreamEvents: not measured"
    verified = stream.verdict.text() if stream.verdict else "-"
    line = (f"StreamEvents at batch {stream.batch}, {stream.concurrency} batches in flight: {stream.eps:,.0f} "
            f"events/s, p50 {stream.latency_ms['p50']:.0f} ms, p99 {stream.latency_ms['p99']:.0f} ms, "
            f"{stream.cpu_us_per_event():.0f} CPU µs/event, in Kafka {verified}")
    if unary is not None and unary.eps > 0:
        line += f"; {stream.eps / unary.eps:.2f} x unary ({unary.eps:,.0f} events/s)"
    return line


def http_text(pairs: Sequence[tuple[RunRecord | None, RunRecord | None]], protocol: str) -> str:
    """The HTTP port beside gRPC at the same point: CPU per event (per call at batch 1) and its ratio."""
    lines = [f"HTTP port (Connect binary over {protocol}, one connection per call in flight) vs gRPC, same "
             "invocation:"]
    for grpc_run, http_run in pairs:
        if grpc_run is None or http_run is None or grpc_run.eps <= 0 or http_run.eps <= 0:
            lines.append("  not measured" if http_run is None else f"  batch {http_run.batch}: no events answered")
            continue
        unit = "call" if http_run.batch == 1 else "event"
        ratio = http_run.cpu_us_per_event() / grpc_run.cpu_us_per_event()
        lines.append(
            f"  batch {http_run.batch}, {http_run.concurrency} in flight: {http_run.cpu_us_per_event():.0f} vs "
            f"{grpc_run.cpu_us_per_event():.0f} CPU µs/{unit} = {ratio:.2f} x gRPC; {http_run.eps:,.0f} vs "
            f"{grpc_run.eps:,.0f} events/s; p50 {http_run.latency_ms['p50']:.0f} vs {grpc_run.latency_ms['p50']:.0f} "
            f"ms; in Kafka {http_run.verdict.text() if http_run.verdict else '-'}")
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
