"""Signed receipts from a real server send, sealed on a SoftHSM token (or a PKCS#12 file) and
timestamped by the test PKI's real TSA, then checked offline with `lienthong receipt verify`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from axis_client import AGENCIES, NGHE_AN, SO_TTTT, VPCP, XML, document
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import load_pem_x509_certificate

import edxml
from server.app.application import build_app
from server.cli import main as cli_main
from server.http.appkeys import DATABASE
from server.runtime.config import Config, load_config
from server.runtime.tokens import new_token
from signing import devpki as pki_cli
from storage.audit import AuditRepo
from storage.repos.agencies import AgencyRepo
from storage.repos.tokens import TokenRepo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures_pki

SEAL_TOKEN = fixtures_pki.AXIS_SEAL_TOKEN


@pytest.fixture(scope="session")
def seal_pki(pki: pki_cli.DevPki, pki_server: pki_cli.PkiServer) -> pki_cli.DevPki:
    """The session PKI (tests/conftest.py), its TSA running."""
    return pki


@pytest.fixture
def seal_hsm(softhsm: fixtures_pki.SoftHsm) -> Path:
    """The PIN file of the session store's token holding the axis seal key."""
    return softhsm.pin_file(SEAL_TOKEN)


def _base_env(pki: pki_cli.DevPki) -> dict[str, str]:
    return {
        "LIENTHONG_SERVER_LOG_JSON": "0",
        "LIENTHONG_TSA_URL": pki.tsa_url,
        "LIENTHONG_AUDIT_ANCHOR_MINUTES": "0",
        "LIENTHONG_SEAL_CHAIN": str(pki.cert_path("gov")),
    }


@pytest.fixture
def hsm_config(tmp_path: Path, seal_pki: pki_cli.DevPki, seal_hsm: Path) -> Config:
    env = {
        **_base_env(seal_pki),
        "LIENTHONG_SEAL_PKCS11_MODULE": fixtures_pki.SOFTHSM2_MODULE,
        "LIENTHONG_SEAL_TOKEN_LABEL": SEAL_TOKEN,
        "LIENTHONG_SEAL_PIN_FILE": str(seal_hsm),
    }
    return load_config(env=env, data_dir=tmp_path / "data")


@pytest.fixture
def p12_config(tmp_path: Path, seal_pki: pki_cli.DevPki, monkeypatch: pytest.MonkeyPatch) -> Config:
    key = serialization.load_pem_private_key(seal_pki.key_path("seal").read_bytes(), None)
    cert = load_pem_x509_certificate(seal_pki.cert_path("seal").read_bytes())
    gov = load_pem_x509_certificate(seal_pki.cert_path("gov").read_bytes())
    path = tmp_path / "seal.p12"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"seal",
            key,  # type: ignore[arg-type]
            cert,
            [gov],
            serialization.BestAvailableEncryption(b"demo-passphrase"),
        )
    )
    monkeypatch.setenv("LIENTHONG_SEAL_PASSPHRASE", "demo-passphrase")
    env = {**_base_env(seal_pki), "LIENTHONG_SEAL_PKCS12": str(path)}
    return load_config(env=env, data_dir=tmp_path / "data")


class Axis:
    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    def auth(self, organ_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[organ_id]}"}


async def _serve(config: Config) -> AsyncIterator[Axis]:
    client = TestClient(TestServer(build_app(config)))
    await client.start_server()
    axis = Axis(client)
    try:
        async with client.app[DATABASE].transaction() as tx:
            for organ_id, name, parent in AGENCIES:
                await AgencyRepo(tx).add(organ_id, name, parent_id=parent)
                token, token_hash = new_token()
                await TokenRepo(tx).create(organ_id, token_hash)
                axis.tokens[organ_id] = token
        yield axis
    finally:
        await client.close()


@pytest.fixture
async def hsm_axis(hsm_config: Config) -> AsyncIterator[Axis]:
    async for axis in _serve(hsm_config):
        yield axis


@pytest.fixture
async def p12_axis(p12_config: Config) -> AsyncIterator[Axis]:
    async for axis in _serve(p12_config):
        yield axis


async def _cli(capsys: Any, *args: str) -> tuple[int, str]:
    code = await asyncio.to_thread(cli_main, list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


async def _send_and_fetch(axis: Axis, tmp_path: Path) -> dict[str, Any]:
    body = edxml.serialize(document(VPCP, (NGHE_AN, SO_TTTT)))
    resp = await axis.client.post(
        "/api/v1/documents", data=body, headers={**axis.auth(VPCP), **XML}
    )
    assert resp.status == 201, await resp.text()
    answer = await resp.json()
    assert answer["receipt_url"] == f"/api/v1/documents/{answer['id']}/receipt"
    resp = await axis.client.get(answer["receipt_url"], headers=axis.auth(VPCP))
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/pkcs7-mime"
    receipt = await resp.read()
    again = await axis.client.get(answer["receipt_url"], headers=axis.auth(VPCP))
    assert await again.read() == receipt  # issued once, then served as stored
    stored = await (
        await axis.client.get(f"/api/v1/documents/{answer['id']}", headers=axis.auth(VPCP))
    ).read()
    files = {"receipt": tmp_path / "r.p7m", "sent": tmp_path / "sent.edxml"}
    files["receipt"].write_bytes(receipt)
    files["sent"].write_bytes(body)
    (tmp_path / "stored.edxml").write_bytes(stored)
    assert hashlib.sha256(stored).hexdigest() == answer["sha256"]
    return {"answer": answer, "receipt": receipt, "body": body, "stored": stored}


async def _check_offline(
    axis: Axis, pki: pki_cli.DevPki, tmp_path: Path, capsys: Any
) -> dict[str, Any]:
    sent = await _send_and_fetch(axis, tmp_path)
    root = str(pki.directory / "trust" / "root.cert.pem")
    receipt = str(tmp_path / "r.p7m")

    code, out = await _cli(capsys, "receipt", "verify", receipt, "--trust", root)
    assert code == 0, out
    assert out.startswith(f"VALID receipt: document {sent['answer']['id']}")
    assert "from 000.00.00.G22 to 2 recipient(s)" in out and "Test Time Stamping Authority" in out
    assert len(out.strip().splitlines()) == 1

    code, out = await _cli(
        capsys, "receipt", "verify", receipt, str(tmp_path / "stored.edxml"), "--trust", root
    )
    assert code == 0 and "package matches (the package as stored by the axis)" in out, out
    code, out = await _cli(
        capsys, "receipt", "verify", receipt, str(tmp_path / "sent.edxml"), "--trust", root
    )
    assert code == 0 and "package matches (the package as sent)" in out, out

    # One byte changed in the package: not the package of this receipt.
    tampered = bytearray(sent["body"])
    tampered[tampered.index(b"V/v")] ^= 0x01
    (tmp_path / "tampered.edxml").write_bytes(bytes(tampered))
    code, out = await _cli(
        capsys, "receipt", "verify", receipt, str(tmp_path / "tampered.edxml"), "--trust", root
    )
    assert code == 1 and out.startswith("INVALID receipt:") and "sha256 differs" in out, out

    # The receipt itself edited (its recipients list): the seal no longer matches.
    edited = sent["receipt"].replace(SO_TTTT.encode(), b"000.02.00.H41")
    assert edited != sent["receipt"]
    (tmp_path / "edited.p7m").write_bytes(edited)
    code, out = await _cli(
        capsys, "receipt", "verify", str(tmp_path / "edited.p7m"), "--trust", root
    )
    assert code == 1 and "altered" in out, out

    # A receipt checked against a look-alike root is not trusted.
    lookalike = tmp_path / "lookalike.pem"
    lookalike.write_bytes(pki.cert_path("lookalike").read_bytes())
    code, out = await _cli(capsys, "receipt", "verify", receipt, "--trust", str(lookalike))
    assert code == 1 and "does not chain" in out, out

    code, out = await _cli(
        capsys, "receipt", "verify", str(tmp_path / "sent.edxml"), "--trust", root
    )
    assert code == 1 and "not a CMS receipt" in out, out
    return sent


async def test_receipt_sealed_on_softhsm_verifies_offline(
    hsm_axis: Axis, seal_pki: pki_cli.DevPki, tmp_path: Path, capsys: Any
) -> None:
    sent = await _check_offline(hsm_axis, seal_pki, tmp_path, capsys)
    # Only the sender gets the receipt; recipients and outsiders are told it does not exist.
    url = sent["answer"]["receipt_url"]
    other = await hsm_axis.client.get(url, headers=hsm_axis.auth(NGHE_AN))
    assert other.status == 404
    # Issuing the receipt was itself recorded in the audit log.
    async with hsm_axis.client.app[DATABASE].reader() as tx:
        actions = [e.action for e in await AuditRepo(tx).page(None, 50)]
    assert actions[:2] == ["document.send", "receipt.issue"]


async def test_receipt_sealed_with_pkcs12_verifies_offline(
    p12_axis: Axis, seal_pki: pki_cli.DevPki, tmp_path: Path, capsys: Any
) -> None:
    await _check_offline(p12_axis, seal_pki, tmp_path, capsys)


async def test_no_seal_no_receipt(tmp_path: Path, seal_pki: pki_cli.DevPki) -> None:
    config = load_config(
        env={"LIENTHONG_SERVER_LOG_JSON": "0", "LIENTHONG_TSA_URL": seal_pki.tsa_url},
        data_dir=tmp_path / "data",
    )
    async for axis in _serve(config):
        body = edxml.serialize(document(VPCP, (NGHE_AN,)))
        resp = await axis.client.post(
            "/api/v1/documents", data=body, headers={**axis.auth(VPCP), **XML}
        )
        assert resp.status == 201
        answer = await resp.json()
        assert "receipt_url" not in answer
        resp = await axis.client.get(
            f"/api/v1/documents/{answer['id']}/receipt", headers=axis.auth(VPCP)
        )
        assert resp.status == 404
        assert "no seal" in (await resp.json())["detail"]
    assert os.environ.get("LIENTHONG_SEAL_PASSPHRASE") is None


# --- what a receipt holds, read by openssl; what `receipt verify` says about each alteration ---

OPENSSL = shutil.which("openssl")
SIGNING_TIME = "1.2.840.113549.1.9.5"
SIGNED_ATTRIBUTES = {
    "1.2.840.113549.1.9.3",  # contentType
    "1.2.840.113549.1.9.4",  # messageDigest
    SIGNING_TIME,
    "1.2.840.113549.1.9.16.2.47",  # signingCertificateV2
    "1.2.840.113549.1.9.52",  # CMSAlgorithmProtection
}


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert OPENSSL, "the openssl command (Debian package openssl) is needed as a second reader"
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, text=True, check=False)


def _signed_attributes(printed: str) -> dict[str, str]:
    """The signed attributes in `openssl cms -cmsout -print`: OID -> the text of its value."""
    section = printed.split("signedAttrs:", 1)[1].split("signatureAlgorithm:", 1)[0]
    attributes: dict[str, str] = {}
    oid = None
    for line in section.splitlines():
        found = re.search(r"object: .*\(([0-9.]+)\)", line)
        if found:
            oid = found.group(1)
            attributes[oid] = ""
        elif oid is not None:
            attributes[oid] += line.strip() + "\n"
    return attributes


async def test_receipt_signing_time_as_openssl_reads_it(
    hsm_axis: Axis, seal_pki: pki_cli.DevPki, tmp_path: Path, capsys: Any
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    sent = await _send_and_fetch(hsm_axis, tmp_path)
    after = datetime.now(UTC)
    receipt = tmp_path / "r.p7m"
    root = seal_pki.directory / "trust" / "root.cert.pem"

    printed = _openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", receipt)
    assert printed.returncode == 0, printed.stderr
    attributes = _signed_attributes(printed.stdout)
    assert set(attributes) == SIGNED_ATTRIBUTES, printed.stdout
    value = re.search(r"UTCTIME:(.*) GMT", attributes[SIGNING_TIME])
    assert value, attributes[SIGNING_TIME]
    signing_time = datetime.strptime(" ".join(value.group(1).split()), "%b %d %H:%M:%S %Y")
    assert before <= signing_time.replace(tzinfo=UTC) <= after

    # openssl checks the seal's signature and chain to the test root and gives back the content.
    content = tmp_path / "content.json"
    verified = _openssl(
        "cms", "-verify", "-inform", "DER", "-in", receipt, "-CAfile", root, "-out", content
    )
    assert verified.returncode == 0, verified.stderr
    assert json.loads(content.read_bytes())["id"] == sent["answer"]["id"]
    lookalike = seal_pki.cert_path("lookalike")
    refused = _openssl("cms", "-verify", "-inform", "DER", "-in", receipt, "-CAfile", lookalike)
    assert refused.returncode != 0 and "Verification failure" in refused.stderr
