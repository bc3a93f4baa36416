"""Typed requests with every field at its edges: the answer always follows the contract."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.checks import check_upload
from tests.fuzz.live import LiveVenus
from tests.fuzz.profiles import examples
from tests.fuzz.strategies import requests


@examples(0.4)
@given(data=st.data())
def test_every_typed_request_is_answered_by_the_contract(live: LiveVenus, data: st.DataObject) -> None:
    """Odd strings, maps, payloads, addresses, timestamps and duplicate ids: refused or answered per event."""
    check_upload(live, data.draw(requests(live.ledger.category)))
