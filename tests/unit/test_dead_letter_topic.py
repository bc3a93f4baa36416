"""dead_letter_topic: empty (off) or a topic Kafka accepts that no category's events go to; else startup stops."""

from __future__ import annotations

import pytest

from venus_grpc.settings import SettingsError, load_settings


@pytest.mark.parametrize("topic", ["", "dead_letters", "venus.dead-letters.v1", "to_analyzer__0.a.b"])
def test_empty_or_a_topic_of_no_category_is_accepted(topic: str) -> None:
    """Off, or any legal topic name the topic template cannot make from a category, is taken as given."""
    assert load_settings(environ={"VENUS_DEAD_LETTER_TOPIC": topic}).dead_letter_topic == topic


def test_a_character_kafka_refuses_is_refused_naming_it() -> None:
    """A space would make Kafka refuse every letter, so startup names the variable and the character."""
    with pytest.raises(SettingsError, match=r"VENUS_DEAD_LETTER_TOPIC='dead letters' is not valid: .*contain ' '"):
        load_settings(environ={"VENUS_DEAD_LETTER_TOPIC": "dead letters"})


def test_a_categorys_topic_is_refused_naming_the_category() -> None:
    """Letters in a category's topic would reach consumers that expect events, so startup refuses it."""
    with pytest.raises(SettingsError, match=r"it is the topic of category DEAD \(topic_template\)"):
        load_settings(environ={"VENUS_DEAD_LETTER_TOPIC": "to_analyzer__0.DEAD"})
