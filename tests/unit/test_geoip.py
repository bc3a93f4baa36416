"""GeoIP over the bundled GeoLite2-City database: known places, and no location without an error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.geoip_helpers import write_city_database
from venus_grpc.geoip import NOWHERE, Geo, MaxMindGeoLookup


@pytest.fixture(scope="module")
def geo() -> Iterator[MaxMindGeoLookup]:
    """A lookup over the bundled database (the default: an empty path)."""
    lookup = MaxMindGeoLookup("", cache_size=16)
    yield lookup
    lookup.close()


def test_a_london_address_has_country_region_and_city(geo: MaxMindGeoLookup) -> None:
    """81.2.69.142 is in Willesden, Brent, United Kingdom."""
    assert geo.lookup("81.2.69.142") == Geo(country_code="GB", country="United Kingdom", region="Brent",
                                            city="Willesden")


def test_a_minneapolis_address_has_its_state_as_region(geo: MaxMindGeoLookup) -> None:
    """128.101.101.101 is in Minneapolis, Minnesota, United States."""
    found = geo.lookup("128.101.101.101")
    assert (found.country_code, found.region, found.city) == ("US", "Minnesota", "Minneapolis")


def test_a_repeated_lookup_gives_the_same_answer(geo: MaxMindGeoLookup) -> None:
    """The cache in front of the database does not change what a lookup returns."""
    assert geo.lookup("81.2.69.142") == geo.lookup("81.2.69.142") != NOWHERE


@pytest.mark.parametrize("ip", ["10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "not-an-ip", "999.1.1.1", ""])
def test_addresses_without_a_location_are_nowhere(geo: MaxMindGeoLookup, ip: str) -> None:
    """Private, loopback, malformed and empty addresses have no location, and are not an error."""
    assert geo.lookup(ip) == NOWHERE


def test_a_missing_database_names_its_path() -> None:
    """Pointing at a file that does not exist fails at startup with the path in the message."""
    with pytest.raises(ValueError, match=re.escape("/nonexistent/GeoLite2-City.mmdb")):
        MaxMindGeoLookup("/nonexistent/GeoLite2-City.mmdb", cache_size=16)


def test_a_file_that_is_not_a_database_names_its_path(tmp_path: Path) -> None:
    """A junk or half-written file fails at startup as a bad setting, with the path in the message."""
    junk = tmp_path / "GeoLite2-City.mmdb"
    junk.write_bytes(b"junk" * 100)
    with pytest.raises(ValueError, match=re.escape(str(junk))):
        MaxMindGeoLookup(str(junk), cache_size=16)


def test_a_database_of_another_kind_is_refused(tmp_path: Path) -> None:
    """A valid MaxMind database that is not a City one (here ASN) fails at startup, naming its kind."""
    asn = write_city_database(tmp_path / "GeoLite2-ASN.mmdb", {"81.2.69.0/24": ("GB", "United Kingdom")},
                              database_type="GeoLite2-ASN")
    with pytest.raises(ValueError, match="is a GeoLite2-ASN database; Venus needs a City database"):
        MaxMindGeoLookup(str(asn), cache_size=16)
