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
from asn1crypto import cms
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
    assert code == 1 and out.strip().splitlines() == [
        "package: tampered.edxml is not the package of this receipt (sha256 differs)",
        "INVALID receipt: package failed",
    ], out

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
LIENTHONG = Path(sys.executable).with_name("lienthong")
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


@pytest.fixture
async def sealed(hsm_axis: Axis, seal_pki: pki_cli.DevPki, tmp_path: Path) -> dict[str, Any]:
    """A receipt of a real send, sealed on the SoftHSM token and timestamped by the test TSA."""
    sent = await _send_and_fetch(hsm_axis, tmp_path)
    sent["root"] = seal_pki.directory / "trust" / "root.cert.pem"
    sent["lookalike"] = seal_pki.cert_path("lookalike")
    return sent


async def _verify(
    capsys: Any, tmp_path: Path, receipt: bytes, *roots: Path
) -> tuple[int, list[str]]:
    path = tmp_path / "checked.p7m"
    path.write_bytes(receipt)
    trust = [arg for root in roots for arg in ("--trust", str(root))]
    code, out = await _cli(capsys, "receipt", "verify", str(path), *trust)
    assert "Traceback" not in out
    return code, out.strip().splitlines()


def _signer_info(receipt: bytes) -> cms.SignerInfo:
    return cms.ContentInfo.load(receipt)["content"]["signer_infos"][0]


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1 and len(old) == len(new)
    return data.replace(old, new)


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

    # `receipt verify` names the same signing time.
    code, out = await _cli(capsys, "receipt", "verify", str(receipt), "--trust", str(root))
    assert code == 0, out
    assert f"at {signing_time.replace(tzinfo=UTC).isoformat()}" in out, out


async def test_verify_altered_content_is_the_content_digest(
    sealed: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    edited = _replace_once(sealed["receipt"], SO_TTTT.encode(), b"000.02.00.H41")
    code, lines = await _verify(capsys, tmp_path, edited, sealed["root"])
    assert code == 1
    assert lines == [
        "content digest: the receipt's content was altered: its digest is not the message "
        "digest the seal signed",
        "INVALID receipt: content digest failed",
    ]


async def test_verify_altered_signature_is_the_signature(
    sealed: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    signature = _signer_info(sealed["receipt"])["signature"].native
    forged = bytearray(signature)
    forged[len(forged) // 2] ^= 0x01
    altered = _replace_once(sealed["receipt"], signature, bytes(forged))
    code, lines = await _verify(capsys, tmp_path, altered, sealed["root"])
    assert code == 1
    # The timestamp certified the original signature value, so it does not cover this one.
    assert lines == [
        "signature: the seal's signature does not verify with the seal certificate's key (the "
        "signature or the signed attributes were altered)",
        "timestamp: the timestamp does not cover this receipt's signature (its message imprint "
        "is not the digest of the signature value)",
        "INVALID receipt: signature, timestamp failed",
    ]


async def test_verify_wrong_trust_roots_is_the_chain(
    sealed: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    code, lines = await _verify(capsys, tmp_path, sealed["receipt"], sealed["lookalike"])
    assert code == 1
    assert len(lines) == 3, lines
    assert lines[0].startswith("chain: the seal certificate (Common Name: Ủy ban nhân dân tỉnh")
    assert lines[0].endswith(") does not chain to the given trust roots")
    assert lines[1].startswith("timestamp: the TSA certificate (Common Name: Test Time Stamping")
    assert lines[1].endswith(") does not chain to the given trust roots")
    assert lines[2] == "INVALID receipt: chain, timestamp failed"


async def test_verify_altered_or_removed_timestamp_is_the_timestamp(
    sealed: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    token = _signer_info(sealed["receipt"])["unsigned_attrs"][0]["values"][0]
    gen_time = token["content"]["encap_content_info"]["content"].parsed["gen_time"]
    # Backdated by years: the TSA's signature no longer covers the TSTInfo.
    backdated = _replace_once(
        sealed["receipt"], gen_time.dump(), gen_time.dump()[:2] + b"2019" + gen_time.dump()[6:]
    )
    code, lines = await _verify(capsys, tmp_path, backdated, sealed["root"])
    assert code == 1
    assert lines == [
        "timestamp: the timestamp token was altered: its TSTInfo is not what the TSA signed",
        "INVALID receipt: timestamp failed",
    ]

    # Removed (unsigned attributes are outside the seal's signature, which stays valid).
    info = cms.ContentInfo.load(sealed["receipt"])
    signer = info["content"]["signer_infos"][0]
    signer["unsigned_attrs"] = None
    info["content"]["signer_infos"] = cms.SignerInfos([signer])
    stripped = info.dump(force=True)
    assert b"Test Time Stamping" not in stripped
    code, lines = await _verify(capsys, tmp_path, stripped, sealed["root"])
    assert code == 1
    assert lines == [
        "timestamp: the receipt carries no signature timestamp",
        "INVALID receipt: timestamp failed",
    ]


def _damaged_certificate_name(receipt: bytes) -> bytes:
    """The receipt with the seal certificate's first name value re-tagged [APPLICATION 18]."""
    certificates = cms.ContentInfo.load(receipt)["content"]["certificates"]
    seal = next(c.chosen for c in certificates if "Ủy ban" in c.chosen.subject.human_friendly)
    start = receipt.index(seal.dump())
    subject = receipt.index(seal["tbs_certificate"]["subject"].dump(), start)
    value = seal["tbs_certificate"]["subject"].chosen[0][0]["value"].dump()
    at = receipt.index(value, subject)
    damaged = bytearray(receipt)
    damaged[at] = 0x52
    return bytes(damaged)


async def test_verify_bad_input_is_one_line(sealed: dict[str, Any], tmp_path: Path) -> None:
    """The `lienthong` program itself: one line on bad input, exit 1, never a traceback."""
    receipt = sealed["receipt"]
    cases = {
        "empty.p7m": (b"", "INVALID receipt: not a CMS receipt ("),
        "package.p7m": (sealed["body"], "INVALID receipt: not a CMS receipt ("),
        "truncated.p7m": (receipt[: len(receipt) // 2], "INVALID receipt: not a CMS receipt ("),
        "data.p7m": (
            cms.ContentInfo({"content_type": "data", "content": b"{}"}).dump(),
            "INVALID receipt: not a CMS receipt (no SignedData)",
        ),
        "damaged-name.p7m": (
            _damaged_certificate_name(receipt),
            "INVALID receipt: a damaged CMS receipt (",
        ),
        "missing.p7m": (None, "lienthong: error: cannot read"),
    }
    answers: dict[str, tuple[int | None, str]] = {}
    for name, (data, _) in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        run = await asyncio.create_subprocess_exec(
            LIENTHONG,
            *("receipt", "verify", str(tmp_path / name), "--trust", str(sealed["root"])),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await run.communicate()
        answers[name] = (run.returncode, output.decode("utf-8").strip())
    for name, (code, out) in answers.items():
        assert code == 1, answers
        assert len(out.splitlines()) == 1 and out.startswith(cases[name][1]), answers
