"""Kafka topic names: which categories Venus accepts, and which names Kafka would refuse.

One place for the rules that request checks, settings and the durability check all depend on, so that a
category accepted in a request always makes a topic the settings promised would work.
"""

from __future__ import annotations

import re

CATEGORY = re.compile(r"[A-Za-z0-9_-]{1,64}")  # the categories a request may name
_LONGEST_CATEGORY = "C" * 64
_KAFKA_MAX_TOPIC_CHARS = 249


def topic_name_problem(topic: str, *, subject: str = "the topic") -> str:
    """Why Kafka would refuse ``topic`` as a topic name, ``subject`` naming it; empty when it would not."""
    illegal = sorted({c for c in topic if not (c.isascii() and (c.isalnum() or c in "._-"))})
    if illegal:
        return f"a Kafka topic name cannot contain {', '.join(map(repr, illegal))}"
    if len(topic) > _KAFKA_MAX_TOPIC_CHARS:
        return f"{subject} has {len(topic)} characters; Kafka allows {_KAFKA_MAX_TOPIC_CHARS}"
    return ""


def template_problem(template: str) -> str:
    """Why ``template`` would not make a legal topic of every category (each request would fail); empty when fine.

    Filled in with a category of 64 characters, the longest a request may name.
    """
    try:
        topic = template.format(category=_LONGEST_CATEGORY)
    except KeyError as exc:
        return f"{{{exc.args[0]}}} is not a placeholder Venus fills in"
    except (IndexError, ValueError, AttributeError) as exc:
        return f"it does not parse ({exc})"
    if "{category}" not in template:
        return "it has no {category}"
    return topic_name_problem(topic, subject="with a 64-character category the topic")


def dead_letter_topic_problem(topic: str, template: str) -> str:
    """Why ``topic`` cannot take dead letters: Kafka would refuse it, or it is a category's topic (letters are no
    events); empty when it can."""
    problem = topic_name_problem(topic)
    if not problem and (match := category_topics(template).fullmatch(topic)):
        return f"it is the topic of category {match.group(1)} (topic_template), whose consumers expect events"
    return problem


def category_topics(template: str) -> re.Pattern[str]:
    """Matches exactly the topics ``template`` makes of the categories a request may name; group 1 is the category."""
    return re.compile(f"({CATEGORY.pattern})".join(re.escape(part) for part in template.split("{category}")))
