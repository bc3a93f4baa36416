"""GeoIP databases with known answers (written by mmdb-writer), replaced the way operators replace them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from venus_grpc.geoip import bundled_database_path


def write_city_database(path: Path, countries: Mapping[str, tuple[str, str]], *,
                        database_type: str = "GeoLite2-City") -> Path:
    """Write a City database (built now) placing each network of ``countries`` in (iso code, English name)."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type, languages=["en"],
                        description="Venus test database")
    for network, (iso_code, name) in countries.items():
        writer.insert_network(IPSet([network]), {"country": {"iso_code": iso_code, "names": {"en": name}}})
    writer.to_db_file(str(path))
    return path


def replace_atomically(source: Path | str, target: Path) -> None:
    """Put ``source``'s bytes at ``target`` with one rename, as geoipupdate and Kubernetes volumes do."""
    staged = target.with_name(target.name + ".staged")
    shutil.copyfile(source, staged)
    os.replace(staged, target)


def copy_of_bundled_database(path: Path) -> Path:
    """A copy of the bundled GeoLite2-City database (built 2018-07-03) at ``path``."""
    shutil.copyfile(bundled_database_path(), path)
    return path
