"""The ``venus`` command: serve, dev, send, new-key, tail, trace-logs, canary."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError

from venus_grpc.settings import SPECS, Settings, SettingsError, Spec, load_settings
from venus_grpc.tools import send_tail, tracelogs
from venus_grpc.tools.tls import API_KEY_ENV, Endpoint, endpoint


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``venus`` command."""
    try:
        args = _parser().parse_args(argv)
        return int(args.run(args) or 0)
    except SettingsError as exc:
        print(f"venus: bad setting: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"venus: Kafka failed: {exc!r}; check --bootstrap and the Kafka security settings", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# The settings of every tool that reads Kafka, under serve's flags and variables. Not the password: a
# command line is visible to every user of the machine and stays in shell history, so it is read from
# VENUS_KAFKA_SASL_PASSWORD only.
_KAFKA_CLIENT_SETTINGS = ("kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username",
                          "kafka_ssl_ca_path")


def _parser() -> argparse.ArgumentParser:
    defaults = load_settings()  # VENUS_* variables also set the defaults of tail and trace-logs
    parser = argparse.ArgumentParser(prog="venus", description="Venus event-ingestion gateway.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway (production)")
    _add_setting_flags(serve)
    serve.set_defaults(run=_serve)

    dev = commands.add_parser("dev", help="run an embedded broker and the gateway on loopback")
    dev.add_argument("--broker-port", type=int, default=9092, help="embedded broker port (0: any free port)")
    _add_setting_flags(dev)
    dev.set_defaults(run=_dev)

    _add_send(commands)
    keys = commands.add_parser("new-key", help="make an API key and print its entry for the keys file")
    keys.add_argument("--name", required=True, help="shown in logs and errors instead of the key")
    keys.add_argument("--app-id", action="append", required=True, help="an app id the key may write (repeat; *: any)")
    keys.add_argument("--category", action="append", help="a category the key may write (repeat; default: any)")
    keys.set_defaults(run=_new_key)
    _add_tail(commands, defaults)
    _add_trace_logs(commands, defaults)
    _add_canary(commands)
    return parser


def _add_send(commands: Any) -> None:
    send = commands.add_parser("send", help="send sample batches and print the results")
    send.add_argument("--target", default="127.0.0.1:50051")
    send.add_argument("--app-id", default="demo-app")
    send.add_argument("--category", default="PERF_CRASH")
    send.add_argument("--events", type=int, default=5, help="events per batch")
    send.add_argument("--batches", type=int, default=1)
    send.add_argument("--concurrency", type=int, default=4, help="batches in flight")
    send.add_argument("--ip", default="81.2.69.142", help="end-user IP put in each event ('' for the caller's)")
    send.add_argument("--timeout-s", type=float, default=10.0)
    _add_venus_client_flags(send)
    send.set_defaults(run=lambda a: asyncio.run(send_tail.send(
        _endpoint(a), app_id=a.app_id, category=a.category, events=a.events, batches=a.batches,
        concurrency=a.concurrency, ip=a.ip, timeout_s=a.timeout_s)))


def _add_tail(commands: Any, defaults: Settings) -> None:
    tail = commands.add_parser("tail", help="print a category's Kafka messages with their headers")
    tail.add_argument("category")
    tail.add_argument("--bootstrap", default=defaults.kafka_bootstrap)
    tail.add_argument("--topic-template", default=defaults.topic_template)
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max-messages", type=int, default=0, help="stop after this many (0: no limit)")
    tail.add_argument("--timeout-s", type=float, default=10.0, help="stop after this long with no message")
    tail.add_argument("--partition", type=int, help="with --offset: print only the message there, e.g. where an "
                      "upload's answer says its event went")
    tail.add_argument("--offset", type=int, help="with --partition: the offset of the one message to print")
    _add_kafka_client_flags(tail)
    tail.set_defaults(run=lambda a: _tail(tail, a))


def _add_trace_logs(commands: Any, defaults: Settings) -> None:
    logs = commands.add_parser("trace-logs", help="print every instance's log lines and the events of one trace")
    logs.add_argument("trace_id", help="32 hex digits, e.g. from a client's traceparent or an error report")
    logs.add_argument("--bootstrap", default=defaults.logs_kafka_bootstrap or defaults.kafka_bootstrap)
    logs.add_argument("--logs-topic", default=defaults.logs_topic)
    logs.add_argument("--events-topic-prefix", default=defaults.topic_template.split("{category}")[0])
    logs.add_argument("--since", type=_duration_s, default=3600.0, metavar="DURATION",
                      help="how far back to look: 90s, 15m, 2h (default 1h)")
    logs.add_argument("--timeout-s", type=float, default=30.0, help="give up scanning after this long")
    _add_kafka_client_flags(logs)
    logs.set_defaults(run=lambda a: asyncio.run(tracelogs.trace_logs(
        a.bootstrap, a.trace_id, settings=_settings(a), logs_topic=a.logs_topic,
        events_topic_prefix=a.events_topic_prefix, since_s=a.since, timeout_s=a.timeout_s)))


def _tail(parser: argparse.ArgumentParser, a: argparse.Namespace) -> int:
    topic, settings = a.topic_template.format(category=a.category), _settings(a)
    if a.partition is None and a.offset is None:
        return asyncio.run(send_tail.tail(a.bootstrap, topic, settings=settings, from_beginning=a.from_beginning,
                                          max_messages=a.max_messages, timeout_s=a.timeout_s))
    if a.partition is None or a.offset is None:
        parser.error("--partition and --offset name one message together: give both")
    return asyncio.run(send_tail.show(a.bootstrap, topic, settings=settings, partition=a.partition,
                                      offset=a.offset, timeout_s=a.timeout_s))


def _add_canary(commands: Any) -> None:
    from venus_grpc.tools.canary import CanaryConfig

    d = CanaryConfig(venus=Endpoint(""), bootstrap="")
    canary = commands.add_parser("canary", help="trickle marked events through a live Venus, read them back "
                                 "from Kafka, export the results as Prometheus metrics")
    canary.add_argument("--target", required=True, help="Venus gRPC address, host:port")
    canary.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers Venus publishes to")
    canary.add_argument("--category", default=d.category, help="reserved category of the canary events")
    canary.add_argument("--topic-template", default=d.topic_template)
    canary.add_argument("--interval-s", type=float, default=d.interval_s, help="seconds between events")
    canary.add_argument("--missing-after-s", type=float, default=d.missing_after_s,
                        help="an acknowledged event not in Kafka after this long counts as missing")
    canary.add_argument("--metrics-host", default=d.metrics_host)
    canary.add_argument("--metrics-port", type=int, default=d.metrics_port)
    canary.add_argument("--duration-s", type=float, default=0.0, help="stop after this long (0: run until stopped)")
    _add_venus_client_flags(canary)
    _add_kafka_client_flags(canary)
    canary.set_defaults(run=_canary)


def _add_venus_client_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of every tool that calls Venus: TLS, mTLS and the API key, read by :func:`_endpoint`."""
    group = parser.add_argument_group("reaching a secured Venus")
    group.add_argument("--ca-path", default="", help="TLS: the CA (PEM) that signed Venus's certificate")
    group.add_argument("--client-cert-path", default="", help="mTLS: the client's certificate chain (PEM)")
    group.add_argument("--client-key-path", default="", help="mTLS: the client's private key (PEM)")
    group.add_argument("--api-key-path", default="", help=f"a file holding the API key (default: the {API_KEY_ENV} "
                       "environment variable; never the key itself as a flag, since command lines are visible to "
                       "every user of the machine and stay in shell history)")


def _endpoint(a: argparse.Namespace) -> Endpoint:
    return endpoint(a.target, ca_path=a.ca_path, client_cert_path=a.client_cert_path,
                    client_key_path=a.client_key_path, api_key_path=a.api_key_path, environ=os.environ)


def _canary(a: argparse.Namespace) -> int:
    from venus_grpc.tools.canary import CanaryConfig, canary

    config = CanaryConfig(venus=_endpoint(a), bootstrap=a.bootstrap, category=a.category,
                          topic_template=a.topic_template, interval_s=a.interval_s,
                          missing_after_s=a.missing_after_s, metrics_host=a.metrics_host,
                          metrics_port=a.metrics_port, kafka_settings=_settings(a))
    return asyncio.run(canary(config, duration_s=a.duration_s))


def _duration_s(text: str) -> float:
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m or 2h") from None


def _add_kafka_client_flags(parser: argparse.ArgumentParser) -> None:
    _add_setting_flags(parser, _KAFKA_CLIENT_SETTINGS)
    parser.epilog = ("Kafka setting flags override VENUS_* environment variables, as for venus serve; the SASL "
                     "password is read from VENUS_KAFKA_SASL_PASSWORD only.")


def _add_setting_flags(parser: argparse.ArgumentParser, names: Sequence[str] = tuple(SPECS)) -> None:
    parser.epilog = "Setting flags override VENUS_* environment variables; docs/configuration.md lists them all."
    groups: dict[str, Any] = {}
    for spec in (SPECS[name] for name in names):
        title = spec.section.title
        if title not in groups:
            groups[title] = parser.add_argument_group(f"{title} settings", spec.section.about or None)
        metavar = "{" + ",".join(spec.choices) + "}" if spec.choices else "VALUE"
        groups[title].add_argument(spec.flag, dest="setting_" + spec.name, metavar=metavar, help=_flag_help(spec))


def _flag_help(spec: Spec) -> str:
    """What the setting does, its environment variable and its default, as ``--help`` shows it."""
    if isinstance(spec.default, tuple | frozenset):
        default = ",".join(sorted(str(item) for item in spec.default)) or "none"
    else:
        default = repr(spec.default)
    return f"{spec.help}; env {spec.env} (default: {default})"


def _settings(args: argparse.Namespace, **defaults: Any) -> Settings:
    from venus_grpc.kafka_clients import check_compression, security_options

    flags = {
        name: spec.parse(raw, key=spec.flag)
        for name, spec in SPECS.items()
        if (raw := getattr(args, "setting_" + name, None)) is not None  # a tool has a few of the flags
    }
    base = load_settings()
    changed = {k: v for k, v in defaults.items() if getattr(base, k) == SPECS[k].default}
    try:
        settings = load_settings(**(changed | flags))
        check_compression(settings)  # here, once, not in every worker's crash loop; it needs aiokafka, Settings not
        security_options(settings)  # the same for a Kafka CA file that cannot be used
        return settings
    except SettingsError as exc:
        if exc.field not in flags:
            raise
        flag = SPECS[exc.field].flag
        raise SettingsError(f"{flag}={flags[exc.field]!r} is not valid: expected {exc.expected}") from None


def _new_key(args: argparse.Namespace) -> int:
    from venus_grpc.ingest.keys import key_entry, new_key

    key = new_key()
    print(f"# The key, for the app's developers; it is not stored anywhere, so keep it now:\n{key}\n")
    print("# Add this entry to the keys file (VENUS_API_KEYS_PATH); Venus picks it up without a restart:")
    print(key_entry(args.name, key, args.app_id, args.category or ["*"]), end="")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from venus_grpc.geoip import check_database
    from venus_grpc.ingest.keys import KeyFile
    from venus_grpc.obs.logs import configure_logging
    from venus_grpc.server.transport import check_tls_files
    from venus_grpc.server.workers import run_workers, worker_count

    settings = _settings(args)
    # Fail here, once, with the setting's name, rather than in every worker's crash loop.
    if settings.tls:
        check_tls_files(settings)
    if settings.api_keys_path:
        KeyFile(settings.api_keys_path)
    if settings.geoip_db_path:
        check_database(settings.geoip_db_path)
    configure_logging(settings)
    count = worker_count(settings)
    if count > 1:
        return run_workers(settings, count)
    from venus_grpc.server.app import run_service

    run_service(settings)
    return 0


def _dev(args: argparse.Namespace) -> int:
    from venus_grpc.obs.logs import configure_logging
    from venus_grpc.server.app import run_service
    from venus_grpc.tools.devbroker import EmbeddedBroker

    with EmbeddedBroker(args.broker_port) as broker:
        settings = _settings(args, host="127.0.0.1", metrics_host="127.0.0.1", kafka_bootstrap=broker.bootstrap,
                             traces_exporter="none", log_format="console", http_enabled=True)
        configure_logging(settings)
        target = f"127.0.0.1:{settings.port}"
        http = f"HTTP (Connect, gRPC-Web) on http://127.0.0.1:{settings.http_port}, " if settings.http_enabled else ""
        print(f"""
Venus dev: gRPC on {target}, {http}/metrics on http://127.0.0.1:{settings.metrics_port}/metrics,
embedded Kafka broker on {broker.bootstrap}, bundled GeoLite2 database. Try, in another terminal:

  .venv/bin/venus send --target {target} --events 5
  .venv/bin/venus tail PERF_CRASH --bootstrap {broker.bootstrap} --from-beginning
  .venv/bin/grpcurl -plaintext {target} list

Ctrl-C stops it.
""", flush=True)
        run_service(settings)
    return 0
