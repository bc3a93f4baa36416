"""StreamEvents with odd sequences, bad batches and undecodable messages: every one answered, stream OK."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.checks import StreamItem, check_stream
from tests.fuzz.live import LiveVenus
from tests.fuzz.mutations import mutated_requests
from tests.fuzz.profiles import examples
from tests.fuzz.strategies import requests

_SEQUENCES = st.one_of(st.sampled_from([0, 1, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1))


@st.composite
def _items(draw: st.DrawFn, category: str) -> list[StreamItem]:
    items: list[StreamItem] = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.integers(0, 4)) == 0:
            items.append(b"\x0a" + draw(mutated_requests(category)))  # field 1 as a length: rarely parses
        else:
            items.append((draw(_SEQUENCES), draw(requests(category))))
    return items


@examples(0.05)
@given(data=st.data())
def test_a_stream_answers_every_batch_whatever_it_carries(live: LiveVenus, data: st.DataObject) -> None:
    """Repeated or extreme sequences and bad batches get one answer each; undecodable ones a rejection."""
    check_stream(live, data.draw(_items(live.ledger.category)))
