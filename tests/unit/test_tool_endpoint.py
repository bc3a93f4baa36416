"""How `venus send` and `venus canary` turn their flags into a way to reach Venus."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from venus_grpc.settings import SettingsError
from venus_grpc.tools.tls import endpoint


def test_a_client_certificate_without_its_key_is_refused_before_any_call(tmp_path: Path) -> None:
    """--client-cert-path alone stops the tool at startup with a message naming both flags."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ca.issue_cert("operator").cert_chain_pems[0].write_to_path(str(tmp_path / "client.crt"))
    with pytest.raises(SettingsError, match="--client-cert-path and --client-key-path go together"):
        endpoint("127.0.0.1:1", ca_path=str(tmp_path / "ca.pem"), client_cert_path=str(tmp_path / "client.crt"),
                 environ={})


def test_the_key_file_wins_over_venus_api_key(tmp_path: Path) -> None:
    """With both a key file and VENUS_API_KEY, the key in the file is sent, stripped of its newline."""
    (tmp_path / "api.key").write_text("from-file\n")
    venus = endpoint("127.0.0.1:1", api_key_path=str(tmp_path / "api.key"), environ={"VENUS_API_KEY": "from-env"})
    assert venus.metadata() == (("authorization", "Bearer from-file"),)


def test_the_api_key_stays_out_of_the_endpoints_repr() -> None:
    """An endpoint printed or logged does not show its API key."""
    assert "s3cret" not in repr(endpoint("127.0.0.1:1", environ={"VENUS_API_KEY": "s3cret"}))
