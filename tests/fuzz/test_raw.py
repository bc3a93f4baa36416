"""Raw request bytes, random or mutated, sent without a serializer: never UNKNOWN, never INTERNAL."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.checks import check_raw
from tests.fuzz.live import LiveVenus
from tests.fuzz.mutations import raw_requests
from tests.fuzz.profiles import examples


@examples(0.4)
@given(data=st.data())
def test_any_request_bytes_are_refused_or_answered(live: LiveVenus, data: st.DataObject) -> None:
    """Bytes that are no request are INVALID_ARGUMENT saying so; bytes that parse are answered per event."""
    check_raw(live, data.draw(raw_requests(live.ledger.category)))
