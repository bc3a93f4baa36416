"""Country, region and city for an IP address, from a MaxMind City database.

A private, unknown or malformed address is not an error: it has no location, and the event is
published with empty geo fields.

The database file is re-read when it changes (geoipupdate or a Kubernetes volume swaps in a new one):
a background task compares its size, modification time and inode every ``geoip_reload_s``, so a
lookup never touches the file system. A new file is opened in a thread and replaces the old one only
if it opens as a City database; a half-written or broken file is refused and the old one stays.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import ipaddress
import os
import time
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

import geoip2.database
import geoip2.errors
import maxminddb
import structlog

from venus_grpc.obs import metrics
from venus_grpc.settings import SettingsError

log = structlog.get_logger(__name__)
# MaxMind rebuilds City databases twice a week: one a month old means its updates have stopped.
_OUT_OF_DATE_AFTER_S = 30 * 24 * 3600


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
    ~25 µs database read into a ~1 µs hit. It is emptied whenever another database is swapped in.
    """

    def __init__(self, path: str, *, cache_size: int) -> None:
        self.path = path or bundled_database_path()
        self._reader, self._stamp = _open_at_startup(self.path)
        self._refused: _Stamp | None = None
        self._cached = functools.lru_cache(maxsize=cache_size)(self._lookup_uncached)
        self.lookup = self._cached  # type: ignore[method-assign]
        self._report()

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

    async def reload(self) -> bool:
        """Open the file again if it changed; ``True`` when the new database is in use.

        A file that cannot be used raises ``ValueError`` once per version of the file; the current
        database stays in use.
        """
        stamp = _stamp(self.path)
        if stamp in (self._stamp, self._refused):
            return False
        try:
            reader, stamp = await asyncio.to_thread(_open, self.path)  # reads the metadata: not on the loop
        except ValueError:
            self._refused = stamp
            raise
        # Lookups run on the event loop too, so none comes between the swap, the cache clear and the close.
        old, self._reader, self._stamp = self._reader, reader, stamp
        self._cached.cache_clear()
        old.close()
        self._report()
        return True

    async def watch(self, interval_s: float) -> None:
        """Reload every ``interval_s`` when the file changed; a broken file is logged and the old database kept."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                if await self.reload():
                    log.info("GeoIP database reloaded", path=self.path, built=_built_on(self._reader))
            except (OSError, ValueError) as exc:
                log.error("GeoIP database changed but cannot be used; still using the previous one",
                          path=self.path, error=str(exc))

    def close(self) -> None:
        """Release the database."""
        self._reader.close()

    def _report(self) -> None:
        built = self._reader.metadata().build_epoch
        metrics.GEOIP_BUILD_TIMESTAMP.set(built)
        if time.time() - built > _OUT_OF_DATE_AFTER_S:
            log.warning("GeoIP database is out of date: addresses that moved since it was built are placed wrongly. "
                        "Point VENUS_GEOIP_DB_PATH at a current GeoIP2/GeoLite2 City database and keep it current "
                        "with MaxMind's geoipupdate (docs/geoip.md)", path=self.path, built=_built_on(self._reader))


def check_database(path: str) -> None:
    """Open the database at ``path`` and close it again; :class:`SettingsError` when Venus could not use it."""
    reader, _ = _open_at_startup(path)
    reader.close()


@dataclass(frozen=True, slots=True)
class _Stamp:
    size: int
    mtime_ns: int
    inode: int


def _stamp(path: str) -> _Stamp:
    st = os.stat(path)
    return _Stamp(st.st_size, st.st_mtime_ns, st.st_ino)


def _open(path: str) -> tuple[geoip2.database.Reader, _Stamp]:
    """Open ``path`` as a City database, or raise ``ValueError`` naming the file and what is wrong."""
    try:
        stamp = _stamp(path)
        reader = geoip2.database.Reader(path)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise ValueError(f"cannot open GeoIP database {path!r}: {exc}") from exc
    kind = reader.metadata().database_type
    if "City" not in kind:  # geoip2 would raise TypeError on every lookup
        reader.close()
        raise ValueError(f"GeoIP database {path!r} is a {kind} database; Venus needs a City database "
                         "(GeoIP2-City or GeoLite2-City)")
    return reader, stamp


def _open_at_startup(path: str) -> tuple[geoip2.database.Reader, _Stamp]:
    try:
        return _open(path)
    except ValueError as exc:
        raise SettingsError(f"VENUS_GEOIP_DB_PATH: {exc}", field="geoip_db_path") from None


def _built_on(reader: geoip2.database.Reader) -> str:
    return datetime.datetime.fromtimestamp(reader.metadata().build_epoch, datetime.UTC).date().isoformat()
