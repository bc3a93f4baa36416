"""Settings come from VENUS_* variables and flags; a bad value stops startup naming the key and value."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from scripts import gen_chart, gen_settings_docs
from venus_grpc._settings_fields import Section, setting, specs_of
from venus_grpc.cli import main
from venus_grpc.kafka_clients import consumer_options, security_options
from venus_grpc.server.transport import server_options
from venus_grpc.settings import SPECS, Settings, SettingsError, Spec, load_settings

# Every (setting, bound) in the metadata, so that a new bounded setting is tested without a new test.
BOUNDS = [pytest.param(spec, kind, id=f"{name}-{kind}") for name, spec in SPECS.items()
          for kind in ("ge", "gt", "le") if getattr(spec.bounds, kind) is not None]


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    """With nothing set, Venus listens on 50051, serves /metrics on 9464 and exports traces over OTLP."""
    settings = load_settings(environ={})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.metrics_port) == ("0.0.0.0", 50051, 9464)
    assert settings.max_events_per_batch == 1000
    assert settings.max_event_payload_bytes == 256 * 1024
    assert settings.allowed_categories == frozenset()
    assert settings.trusted_proxies == ()
    assert settings.traces_exporter == "otlp"
    assert settings.topic_for("PERF_CRASH") == "to_analyzer__0.PERF_CRASH"


def test_numbers_are_parsed_from_the_environment() -> None:
    """Integer and float variables become numbers of the field's type."""
    settings = load_settings(environ={"VENUS_PORT": "6000", "VENUS_MAX_EVENTS_PER_BATCH": "50",
                                      "VENUS_SHUTDOWN_GRACE_S": "2.5", "VENUS_KAFKA_LINGER_MS": "0"})
    assert settings.port == 6000
    assert settings.max_events_per_batch == 50
    assert settings.shutdown_grace_s == 2.5
    assert settings.kafka_linger_ms == 0


@pytest.mark.parametrize(("raw", "expected"), [("false", False), ("0", False), ("off", False), ("NO", False),
                                                ("true", True), ("1", True), ("On", True), ("yes", True)])
def test_booleans_accept_the_usual_spellings(raw: str, expected: bool) -> None:
    """VENUS_METRICS_ENABLED understands true/false, 1/0, yes/no and on/off in any case."""
    assert load_settings(environ={"VENUS_METRICS_ENABLED": raw}).metrics_enabled is expected


def test_allowed_categories_is_a_comma_list() -> None:
    """VENUS_ALLOWED_CATEGORIES is comma separated; blanks and spaces around names are dropped."""
    settings = load_settings(environ={"VENUS_ALLOWED_CATEGORIES": " PERF_CRASH, PERF_ANR ,,CUSTOM "})
    assert settings.allowed_categories == frozenset({"PERF_CRASH", "PERF_ANR", "CUSTOM"})


def test_trusted_proxies_is_a_comma_list_of_networks() -> None:
    """VENUS_TRUSTED_PROXIES takes CIDRs and bare addresses, IPv4 and IPv6."""
    settings = load_settings(environ={"VENUS_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,fd00::/8"})
    assert settings.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.168.1.7/32"),
                                        ipaddress.ip_network("fd00::/8"))


def test_literal_choices_are_accepted() -> None:
    """Exporter, log format and compression take one of their listed values."""
    settings = load_settings(environ={"VENUS_TRACES_EXPORTER": "console", "VENUS_LOG_FORMAT": "console",
                                      "VENUS_KAFKA_COMPRESSION": "zstd"})
    assert (settings.traces_exporter, settings.log_format, settings.kafka_compression) == ("console", "console", "zstd")


def test_otel_traces_exporter_is_honoured() -> None:
    """The standard OTEL_TRACES_EXPORTER=none turns span export off."""
    assert load_settings(environ={"OTEL_TRACES_EXPORTER": "none"}).traces_exporter == "none"


def test_venus_traces_exporter_wins_over_otel_traces_exporter() -> None:
    """The Venus-specific variable is the more specific one, so it takes precedence."""
    environ = {"OTEL_TRACES_EXPORTER": "none", "VENUS_TRACES_EXPORTER": "console"}
    assert load_settings(environ=environ).traces_exporter == "console"


def test_overrides_win_over_the_environment() -> None:
    """Typed overrides (from flags or tests) replace environment values."""
    assert load_settings(environ={"VENUS_PORT": "6000"}, port=7000).port == 7000


@pytest.mark.parametrize(("key", "raw"), [
    ("VENUS_PORT", "notanumber"),
    ("VENUS_PORT", "70000"),
    ("VENUS_SHUTDOWN_GRACE_S", "soon"),
    ("VENUS_METRICS_ENABLED", "maybe"),
    ("VENUS_TRUSTED_PROXIES", "10.0.0.0/33"),
    ("VENUS_LOG_FORMAT", "xml"),
    ("VENUS_KAFKA_COMPRESSION", "brotli"),
    ("VENUS_MAX_EVENTS_PER_BATCH", "0"),
    ("VENUS_TOPIC_TEMPLATE", "events"),
    ("VENUS_LOG_LEVEL", "LOUD"),
    ("VENUS_MAX_CONNECTION_AGE_S", "-1"),
    ("VENUS_QUOTA_EVENTS_PER_S", "-5"),
    ("VENUS_KAFKA_SECURITY_PROTOCOL", "KERBEROS"),
    ("VENUS_PUBLIC_SERVICES", "venus.v1.IngestService"),
])
def test_a_bad_value_names_the_key_and_the_value(key: str, raw: str) -> None:
    """A value Venus cannot use fails with a SettingsError that says which variable and what it held."""
    with pytest.raises(SettingsError) as error:
        load_settings(environ={key: raw})
    assert key in str(error.value)
    assert raw in str(error.value)


def test_a_bad_otel_traces_exporter_names_the_variable() -> None:
    """A bad OTEL_TRACES_EXPORTER is reported under its own name, not a Venus field name."""
    with pytest.raises(SettingsError, match=r"OTEL_TRACES_EXPORTER='zipkin'"):
        load_settings(environ={"OTEL_TRACES_EXPORTER": "zipkin"})


def test_in_flight_limit_below_one_batch_is_rejected() -> None:
    """max_events_in_flight smaller than max_events_per_batch is refused: a full batch could never run."""
    with pytest.raises(SettingsError, match=r"VENUS_MAX_EVENTS_IN_FLIGHT=500.*max_events_per_batch \(1000\)"):
        load_settings(environ={"VENUS_MAX_EVENTS_IN_FLIGHT": "500"})


def test_bytes_in_flight_below_one_message_is_rejected() -> None:
    """max_bytes_in_flight smaller than max_message_bytes is refused: a large batch could never run."""
    with pytest.raises(SettingsError, match=r"VENUS_MAX_BYTES_IN_FLIGHT=1000000.*max_message_bytes \(4194304\)"):
        load_settings(environ={"VENUS_MAX_BYTES_IN_FLIGHT": "1000000"})


@pytest.mark.parametrize(("environ", "message"), [
    ({"VENUS_TLS_CERT_PATH": "tls.crt"}, "VENUS_TLS_KEY_PATH='' is not valid: expected set together with"),
    ({"VENUS_TLS_CLIENT_CA_PATH": "ca.pem"}, "expected set only with tls_cert_path and tls_key_path"),
    ({"VENUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "expected a user name and password"),
])
def test_security_settings_that_cannot_work_together_are_refused(environ: dict[str, str], message: str) -> None:
    """A key without its certificate, mTLS without TLS, or SASL without credentials fail at startup."""
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=environ)


def test_the_kafka_password_is_not_in_the_settings_repr() -> None:
    """Settings may be logged; the SASL password must not be in them."""
    settings = load_settings(environ={"VENUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "VENUS_KAFKA_SASL_USERNAME": "u",
                                      "VENUS_KAFKA_SASL_PASSWORD": "hunter2-secret"})
    assert settings.kafka_sasl_password == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings)


def test_an_unknown_override_is_rejected() -> None:
    """A misspelt setting name fails instead of being silently ignored."""
    with pytest.raises(SettingsError, match=r"unknown setting.*prot"):
        load_settings(environ={}, prot=1)


def test_serve_with_a_bad_flag_exits_2_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """`venus serve --port notanumber` stops before serving, with exit code 2 and the flag in the message."""
    assert main(["serve", "--port", "notanumber"]) == 2
    err = capsys.readouterr().err
    assert "--port" in err
    assert "notanumber" in err


def test_serve_with_an_out_of_range_flag_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """`venus serve --port 70000` exits 2 and names the flag the user typed, not an unset variable."""
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_serve_with_a_bad_environment_variable_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`VENUS_PORT=notanumber venus serve` exits 2 with a one-line message naming the variable, not a traceback."""
    monkeypatch.setenv("VENUS_PORT", "notanumber")
    assert main(["serve"]) == 2
    assert "VENUS_PORT='notanumber'" in capsys.readouterr().err


def test_kafka_security_settings_become_producer_options(tmp_path: Path) -> None:
    """SASL over TLS gives aiokafka the mechanism, the credentials and a TLS context; PLAINTEXT gives nothing more."""
    ca = trustme.CA()
    ca_path = tmp_path / "kafka-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    options = security_options(load_settings(environ={
        "VENUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "VENUS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "VENUS_KAFKA_SASL_USERNAME": "venus", "VENUS_KAFKA_SASL_PASSWORD": "pw",
        "VENUS_KAFKA_SSL_CA_PATH": str(ca_path),
    }))
    assert {k: v for k, v in options.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "venus", "sasl_plain_password": "pw"}
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert security_options(load_settings(environ={})) == {"security_protocol": "PLAINTEXT"}


def test_tool_consumers_get_the_kafka_security_settings(tmp_path: Path) -> None:
    """The consumer of `venus tail`, `trace-logs` and `canary` gets SASL over TLS as Venus's producer does.

    Tansu, the broker of the tests, has no SASL or TLS listener: the e2e tests read Kafka in PLAINTEXT only.
    """
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "kafka-ca.pem"))
    options = consumer_options(load_settings(environ={
        "VENUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "VENUS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "VENUS_KAFKA_SASL_USERNAME": "operator", "VENUS_KAFKA_SASL_PASSWORD": "pw",
        "VENUS_KAFKA_SSL_CA_PATH": str(tmp_path / "kafka-ca.pem"),
    }), "kafka-1.example:9093")
    assert {k: v for k, v in options.items() if k != "ssl_context"} == {
        "bootstrap_servers": "kafka-1.example:9093", "group_id": None, "enable_auto_commit": False,
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "operator", "sasl_plain_password": "pw"}
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_server_options_carry_the_connection_limits() -> None:
    """Connection limits reach gRPC's core; a zero age or idle time means the option is left out (never)."""
    options = dict(server_options(load_settings(environ={"VENUS_MAX_CONNECTION_AGE_S": "120",
                                                         "VENUS_MAX_CONNECTION_IDLE_S": "0"})))
    assert options["grpc.max_connection_age_ms"] == 120_000
    assert options["grpc.max_connection_age_grace_ms"] == 30_000
    assert "grpc.max_connection_idle_ms" not in options
    assert options["grpc.max_concurrent_streams"] == 100


def test_serve_help_says_what_each_setting_does(capsys: pytest.CaptureFixture[str]) -> None:
    """`venus serve --help` gives each flag its meaning, its environment variable and its default."""
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--max-connection-age-s VALUE close client connections (GOAWAY) after this long" in help_text
    assert "env VENUS_MAX_CONNECTION_AGE_S (default: 600.0)" in help_text


def test_every_setting_has_help_text_a_section_and_a_parser() -> None:
    """Each field of Settings is declared with setting(): it says what it does and how its value is read."""
    assert list(SPECS) == [f.name for f in dataclasses.fields(Settings)]
    for spec in SPECS.values():
        assert spec.help.strip(), spec.name
        assert spec.section.title, spec.name
        assert spec.expected, spec.name


def test_a_setting_of_a_type_without_a_parser_is_refused() -> None:
    """A field whose type Venus cannot parse fails when the settings are built, not later with a raw string."""
    @dataclasses.dataclass(frozen=True)
    class Odd:
        ratio: complex = setting(1j, "a complex ratio", section=Section("Odd"))

    with pytest.raises(TypeError, match=r"Odd\.ratio: no parser for settings of type <class 'complex'>"):
        specs_of(Odd)


def test_a_field_declared_without_setting_is_refused() -> None:
    """A plain field has no help text or bounds, so building the settings refuses it."""
    @dataclasses.dataclass(frozen=True)
    class Plain:
        port: int = 5

    with pytest.raises(TypeError, match=r"Plain\.port: declare it with setting"):
        specs_of(Plain)


def _beyond(spec: Spec, value: float, direction: int) -> Any:
    """The next value of the setting's type past ``value``, in ``direction`` (+1 up, -1 down)."""
    if spec.type is int:
        return int(value) + direction
    return math.nextafter(float(value), direction * math.inf)


def _edge_and_outside(spec: Spec, kind: str) -> tuple[Any, Any]:
    """The value right at the bound ``kind`` that is accepted, and the nearest one that is not."""
    limit = getattr(spec.bounds, kind)
    if kind == "ge":
        return spec.type(limit), _beyond(spec, limit, -1)
    if kind == "gt":
        return _beyond(spec, limit, +1), spec.type(limit)
    return spec.type(limit), _beyond(spec, limit, +1)


@pytest.mark.parametrize(("spec", "kind"), BOUNDS)
def test_a_value_just_outside_a_bound_is_refused_naming_the_variable(spec: Spec, kind: str) -> None:
    """The nearest value past a bound in the metadata fails with the variable, the value and the expectation."""
    _, outside = _edge_and_outside(spec, kind)
    with pytest.raises(SettingsError) as error:
        load_settings(environ={spec.env: str(outside)})
    assert f"{spec.env}={outside!r} is not valid: expected {spec.expected}" == str(error.value)


@pytest.mark.parametrize(("spec", "kind"), BOUNDS)
def test_a_value_at_a_bound_is_accepted(spec: Spec, kind: str) -> None:
    """The value at the edge of a bound in the metadata is taken as given."""
    edge, _ = _edge_and_outside(spec, kind)
    # A one-event batch and a one-byte message, so that the in-flight limits at their own edge are not below
    # what one batch needs.
    settings = load_settings(environ={"VENUS_MAX_EVENTS_PER_BATCH": "1", "VENUS_MAX_MESSAGE_BYTES": "1",
                                      spec.env: str(edge)})
    assert getattr(settings, spec.name) == edge


def test_serve_help_has_a_flag_for_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    """`venus serve --help` is built from the settings, so no setting lacks its flag."""
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = capsys.readouterr().out
    assert [spec.flag for spec in SPECS.values() if f"{spec.flag} " not in help_text] == []


def test_docs_configuration_is_generated_from_the_current_settings() -> None:
    """docs/configuration.md matches the Settings metadata; run scripts/gen_settings_docs.py if not."""
    assert gen_settings_docs.stale() == []


def test_docs_configuration_lists_every_setting() -> None:
    """Every setting has a row in docs/configuration.md, under its environment variable."""
    text = gen_settings_docs.DOC.read_text()
    assert [spec.env for spec in SPECS.values() if f"| `{spec.name}` | `{spec.env}` |" not in text] == []


def test_the_helm_chart_is_generated_from_the_current_settings() -> None:
    """The chart's values.yaml, schema and defaults match the Settings metadata; run scripts/gen_chart.py if not."""
    assert gen_chart.stale() == []
