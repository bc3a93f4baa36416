"""Country, region and city for an IP address, from a MaxMind City database.

A private, unknown or malformed address is not an error: it has no location, and the event is
published with empty geo fields.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

import geoip2.database
import geoip2.errors


@dataclass(frozen=True, slots=True)
class Geo:
    """Where an address is; empty strings where the database does not know."""

    country_code: str = ""
    country: str = ""
    region: str = ""
    city: str = ""


NOWHERE = Geo()


class GeoLookup(Protocol):
    """Finds where an IP address is."""

    def lookup(self, ip: str) -> Geo:
        """The location of ``ip``; :data:`NOWHERE` when unknown."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...


def bundled_database_path() -> str:
    """The GeoLite2-City database shipped by the ``maxminddb-geolite2`` package."""
    return str(resources.files("_maxminddb_geolite2") / "GeoLite2-City.mmdb")


class MaxMindGeoLookup:
    """A :class:`GeoLookup` over a MaxMind City database, with an LRU cache in front.

    Clients of one app tend to come from few networks, so repeats are common: the cache turns a
    ~25 µs database read into a ~1 µs hit.
    """

    def __init__(self, path: str, *, cache_size: int) -> None:
        try:
            self._reader = geoip2.database.Reader(path or bundled_database_path())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot open GeoIP database {path or bundled_database_path()!r}: {exc}") from exc
        self.lookup = functools.lru_cache(maxsize=cache_size)(self._lookup_uncached)  # type: ignore[method-assign]

    def lookup(self, ip: str) -> Geo:
        """The location of ``ip``; :data:`NOWHERE` when unknown (replaced by a cached lookup)."""
        return self._lookup_uncached(ip)

    def _lookup_uncached(self, ip: str) -> Geo:
        try:
            if not ipaddress.ip_address(ip).is_global:
                return NOWHERE
            city = self._reader.city(ip)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return NOWHERE
        return Geo(
            country_code=city.country.iso_code or "",
            country=city.country.name or "",
            region=city.subdivisions.most_specific.name or "",
            city=city.city.name or "",
        )

    def close(self) -> None:
        """Release the database."""
        self._reader.close()
