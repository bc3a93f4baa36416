"""topic_template: a template that cannot make a legal Kafka topic of every legal category stops startup."""

from __future__ import annotations

import pytest

from venus_grpc.cli import main
from venus_grpc.settings import SettingsError, load_settings


@pytest.mark.parametrize("template", ["events.{category}", "{category}", "app-1_{category}.v2",
                                      "a" * 185 + "{category}"])
def test_a_template_making_legal_topic_names_is_accepted(template: str) -> None:
    """Letters, digits, '.', '_' and '-' around {category}, up to 249 characters with the longest category, are fine."""
    assert load_settings(environ={"VENUS_TOPIC_TEMPLATE": template}).topic_template == template


def test_an_unknown_placeholder_is_refused_naming_it() -> None:
    """`events.{category}.{region}` fails at startup, naming the variable, its value and the unknown placeholder."""
    with pytest.raises(SettingsError) as error:
        load_settings(environ={"VENUS_TOPIC_TEMPLATE": "events.{category}.{region}"})
    message = str(error.value)
    assert message.startswith("VENUS_TOPIC_TEMPLATE='events.{category}.{region}' is not valid")
    assert "{region} is not a placeholder Venus fills in" in message
    assert "{category} as its only placeholder" in message


@pytest.mark.parametrize("template", ["events.{category", "events.{category}}", "events.{}.{category}",
                                      "events.{category:d}"])
def test_a_template_that_does_not_parse_is_refused(template: str) -> None:
    """An unclosed brace, a stray brace, a positional field or a bad format spec fails at startup, not per request."""
    with pytest.raises(SettingsError, match=r"VENUS_TOPIC_TEMPLATE=.* is not valid: .*does not parse"):
        load_settings(environ={"VENUS_TOPIC_TEMPLATE": template})


def test_a_template_without_category_is_refused() -> None:
    """A template without {category} would send every category to one topic, so it is refused."""
    with pytest.raises(SettingsError, match=r"VENUS_TOPIC_TEMPLATE='events' is not valid: .*it has no \{category\}"):
        load_settings(environ={"VENUS_TOPIC_TEMPLATE": "events"})


@pytest.mark.parametrize(("template", "shown"), [("events/{category}", "'/'"), ("events {category}", "' '"),
                                                 ("événements.{category}", "'é'")])
def test_a_character_kafka_refuses_in_topic_names_is_refused(template: str, shown: str) -> None:
    """A '/', a space or a non-ASCII letter would make Kafka refuse every topic, so startup names the character."""
    with pytest.raises(SettingsError, match=f"a Kafka topic name cannot contain {shown}"):
        load_settings(environ={"VENUS_TOPIC_TEMPLATE": template})


def test_a_template_too_long_for_the_longest_category_is_refused() -> None:
    """With a 64-character category (the longest Venus accepts) the topic must stay within Kafka's 249 characters."""
    with pytest.raises(SettingsError, match=r"the topic has 250 characters; Kafka allows 249"):
        load_settings(environ={"VENUS_TOPIC_TEMPLATE": "a" * 186 + "{category}"})


def test_serve_with_a_bad_template_flag_exits_2_naming_the_flag_and_the_problem(
    capsys: pytest.CaptureFixture[str]
) -> None:
    """`venus serve --topic-template 'events.{category}.{region}'` exits 2 before serving and says what is wrong."""
    # Loopback, any port, one process: should the check ever stop working, the test hangs alone, on no shared port.
    safe = ["--host", "127.0.0.1", "--port", "0", "--metrics-enabled", "false", "--workers", "1"]
    assert main(["serve", *safe, "--topic-template", "events.{category}.{region}"]) == 2
    err = capsys.readouterr().err
    assert "--topic-template='events.{category}.{region}' is not valid" in err
    assert "{region} is not a placeholder Venus fills in" in err
