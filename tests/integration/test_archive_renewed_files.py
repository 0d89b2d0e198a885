"""The archive returns renewed files: each attachment's B-LTA renewals and the caller's own
attachment versions (with theirs) in the record, as downloads, in the BagIt package, and
`lienthong archive verify` checks them (hash, signatures, the renewal starts with the bytes of
the file it renews).

The renewals are real: the short-lived-TSA PKI of test_archive_renew.py, a B-LTA-signed PDF sent
through the API, the app's own Renewer. The attachment version stands for what the signing desk
stores when NGHE_AN signs the attachment (a B-LTA signature over the original, an object in the
store and an attachment_versions row); how the desk makes it is tested elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import bagit
import pytest
from axis_client import NGHE_AN, OUTSIDER, VPCP, Axis, document
from test_archive_renew import _env, _signed_lta, axis_config, short_pki

from server.app.lifetimes import RENEWER
from server.cli import main
from server.http.appkeys import DATABASE, OBJECTS
from server.runtime.tokens import new_token
from signing import devpki
from signing.sign import B_LTA, SigningServices, async_sign_pdf
from storage.repos.signing_sessions import AttachmentVersionRepo
from storage.repos.tokens import TokenRepo

__all__ = ["axis_config", "short_pki"]  # fixtures of the short-lived-TSA PKI

NAME = "Quyết định.pdf"
STEM = "00-Quyết định"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _officer_signs(pki: devpki.DevPki, source: Path, out: Path) -> None:
    """A second B-LTA signature over ``source`` (an incremental update), by the officer."""
    from pyhanko.sign.signers import SimpleSigner

    signer = SimpleSigner.load(
        str(pki.key_path("officer")),
        str(pki.cert_path("officer")),
        ca_chain_files=(str(pki.cert_path("gov")),),
    )
    services = SigningServices(
        trust_roots=(pki.root_cert,), tsa_url=pki.tsa_url, other_certs=(pki.cert("gov"),)
    )
    try:
        await services.offload(async_sign_pdf(source, out, signer, level=B_LTA, services=services))
    finally:
        await asyncio.to_thread(services.close)


async def _token(axis: Axis, organ_id: str, role: str) -> str:
    token, token_hash = new_token()
    async with axis.client.app[DATABASE].transaction() as tx:
        await TokenRepo(tx).create(organ_id, token_hash, label=role, roles=[role])
    return token


async def _get(axis: Axis, path: str, token: str) -> tuple[int, bytes]:
    resp = await axis.client.get(path, headers={"Authorization": f"Bearer {token}"})
    return resp.status, await resp.read()


async def _verify(bag: Path) -> int:
    return await asyncio.to_thread(main, ["archive", "verify", str(bag)])


@pytest.fixture
async def renewed(
    axis: Axis, short_pki: devpki.DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A document from VPCP to NGHE_AN whose attachment was renewed, with a version NGHE_AN
    signed, renewed too; the bytes of each file."""
    for key, value in _env(short_pki).items():
        monkeypatch.setenv(key, value)
    original = await _signed_lta(short_pki, tmp_path)
    receipt = await axis.send_ok(
        VPCP, document(VPCP, [NGHE_AN], attachments=[(NAME, "application/pdf", original)])
    )
    doc_id = receipt["id"]
    app = axis.client.app
    await _officer_signs(short_pki, tmp_path / "lta.pdf", tmp_path / "version.pdf")
    version_bytes = (tmp_path / "version.pdf").read_bytes()
    ref = await app[OBJECTS].put_file(tmp_path / "version.pdf")
    async with app[DATABASE].transaction() as tx:
        version = await AttachmentVersionRepo(tx).add(
            doc_id, 0, NGHE_AN, "signature", ref.sha256, ref.size, _sha(original), NAME
        )
    run = await app[RENEWER].run(30)
    assert len(run.renewed) == 2, (run.summary(), run.failed, run.not_extended)
    files = {r.version_id: r for r in run.renewed}
    return {
        "id": doc_id,
        "original": original,
        "version": version,
        "version_bytes": version_bytes,
        "renewal": files[None],
        "version_renewal": files[version.id],
    }


async def test_record_lists_renewals_and_own_versions(axis: Axis, renewed: dict[str, Any]) -> None:
    doc_id, original = renewed["id"], renewed["original"]
    renewal, version = renewed["renewal"], renewed["version"]
    archivist = await _token(axis, NGHE_AN, "archivist")
    path = f"/api/v1/archive/{doc_id}"

    code, body = await _get(axis, path, axis.tokens[VPCP])
    assert code == 200, body
    [att] = json.loads(body)["attachments"]
    [entry] = att["renewals"]
    assert entry["id"] == renewal.id and entry["sha256"] == renewal.sha256
    assert entry["base_sha256"] == _sha(original) == att["sha256"]
    assert entry["created_at"] == renewal.created_at.isoformat()
    assert entry["expires_at"].startswith("2045-01-01")
    assert att["versions"] == []  # the sender made no version; NGHE_AN's is not its to see

    # The renewal is served to the sender, the recipient and its archivist, nobody else.
    outsider_archivist = await _token(axis, OUTSIDER, "archivist")
    for token in (axis.tokens[VPCP], axis.tokens[NGHE_AN], archivist):
        code, data = await _get(axis, entry["href"], token)
        assert code == 200
        assert _sha(data) == renewal.sha256 and len(data) == renewal.size
        assert data.startswith(original) and len(data) > len(original)
    for token in (axis.tokens[OUTSIDER], outsider_archivist):
        code, _ = await _get(axis, entry["href"], token)
        assert code == 404
    code, _ = await _get(axis, f"{path}/renewals/0000000000000000", axis.tokens[VPCP])
    assert code == 404

    # The recipient (and its archivist) also see the version it made, with its renewal.
    for token in (axis.tokens[NGHE_AN], archivist):
        code, body = await _get(axis, path, token)
        [att] = json.loads(body)["attachments"]
        assert [r["id"] for r in att["renewals"]] == [renewal.id]
        [ver] = att["versions"]
        assert ver["version"] == version.id and ver["kind"] == "signature"
        assert ver["organ_id"] == NGHE_AN and ver["sha256"] == version.sha256
        code, data = await _get(axis, ver["href"], token)
        assert code == 200 and data == renewed["version_bytes"]
        [vr] = ver["renewals"]
        assert vr["id"] == renewed["version_renewal"].id and vr["base_sha256"] == version.sha256
        code, data = await _get(axis, vr["href"], token)
        assert code == 200 and data.startswith(renewed["version_bytes"])
    code, _ = await _get(axis, vr["href"], axis.tokens[VPCP])  # not the sender's version
    assert code == 404


async def _bag(axis: Axis, doc_id: str, token: str, target: Path) -> Path:
    code, body = await _get(axis, f"/api/v1/archive/{doc_id}/package", token)
    assert code == 200, body
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        zf.extractall(target)
    return target / f"lienthong-{doc_id}"


async def test_bag_carries_renewed_files_and_verify_checks_them(
    axis: Axis, renewed: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc_id, original = renewed["id"], renewed["original"]
    renewal, version_renewal = renewed["renewal"], renewed["version_renewal"]

    # The sender's bag: the attachment and its renewal, no version of NGHE_AN.
    sender_bag = await _bag(axis, doc_id, axis.tokens[VPCP], tmp_path / "sender")
    bagit.Bag(str(sender_bag)).validate()
    names = sorted(p.name for p in (sender_bag / "data" / "attachments").iterdir())
    assert names == [f"{STEM}.pdf", f"{STEM}.renewal-1.pdf"]

    bag_dir = await _bag(axis, doc_id, axis.tokens[NGHE_AN], tmp_path / "recipient")
    bag = bagit.Bag(str(bag_dir))
    bag.validate()
    attachments = bag_dir / "data" / "attachments"
    names = sorted(p.name for p in attachments.iterdir())
    assert names == sorted(
        [
            f"{STEM}.pdf",
            f"{STEM}.renewal-1.pdf",
            f"{STEM}.version-1.pdf",
            f"{STEM}.version-1.renewal-1.pdf",
        ]
    )
    assert (attachments / f"{STEM}.pdf").read_bytes() == original
    assert _sha((attachments / f"{STEM}.renewal-1.pdf").read_bytes()) == renewal.sha256
    assert (attachments / f"{STEM}.version-1.pdf").read_bytes() == renewed["version_bytes"]
    renewed_version = (attachments / f"{STEM}.version-1.renewal-1.pdf").read_bytes()
    assert _sha(renewed_version) == version_renewal.sha256
    info = bag.info
    assert info["Lienthong-Renewal-Count"] == "2"
    lines = info["Lienthong-Renewal"]
    assert (
        f"attachments/{STEM}.renewal-1.pdf sha256={renewal.sha256} "
        f"created={renewal.created_at.isoformat()} renews=attachments/{STEM}.pdf"
    ) in lines
    assert any(
        line.startswith(f"attachments/{STEM}.version-1.renewal-1.pdf ")
        and line.endswith(f"renews=attachments/{STEM}.version-1.pdf")
        for line in lines
    )
    assert info["Lienthong-Attachment-Version"].startswith(
        f"attachments/{STEM}.version-1.pdf kind=signature organ={NGHE_AN} "
    )
    record = json.loads((bag_dir / "data" / "archive.json").read_text("utf-8"))
    [att] = record["attachments"]
    assert att["file"] == f"attachments/{STEM}.pdf"
    assert att["renewals"][0]["renews_file"] == att["file"]

    # verify: every file's signatures, each renewal extends what it renews. The test root is
    # not in the default trust store: INDETERMINATE (2), nothing failed.
    tampered_copy = tmp_path / "forged"
    shutil.copytree(bag_dir, tampered_copy)
    assert await _verify(bag_dir) == 2
    out = capsys.readouterr().out
    # each renewal adds a document timestamp to the signatures of the file it renews
    for name, count in (("renewal-1", 3), ("version-1", 4), ("version-1.renewal-1", 5)):
        assert f"attachments/{STEM}.{name}.pdf: {count} signature(s), INDETERMINATE" in out
    assert f"{STEM}.renewal-1.pdf: an incremental update of attachments/{STEM}.pdf" in out
    assert (
        f"{STEM}.version-1.renewal-1.pdf: an incremental update of attachments/{STEM}.version-1.pdf"
    ) in out
    assert "DIFFERS" not in out and "does NOT" not in out

    # A renewal with one byte changed inside the part it shares with the original.
    target = tampered_copy / "data" / "attachments" / f"{STEM}.renewal-1.pdf"
    data = bytearray(target.read_bytes())
    at = len(original) // 2
    data[at] = data[at] ^ 0x01
    target.write_bytes(bytes(data))
    code = await _verify(tampered_copy)  # the manifest catches it first
    assert code == 1
    assert "not valid" in capsys.readouterr().err

    # The forger rebuilds the manifests: the record's sha256 catches it.
    forged = bagit.Bag(str(tampered_copy))
    forged.save(manifests=True)
    assert await _verify(tampered_copy) == 1
    assert f"{STEM}.renewal-1.pdf: DIFFERS from the renewal the axis stored" in (
        capsys.readouterr().out
    )

    # ...and rewrites archive.json too: the renewal no longer starts with the original's bytes.
    record_path = tampered_copy / "data" / "archive.json"
    forged_record = json.loads(record_path.read_text("utf-8"))
    forged_record["attachments"][0]["renewals"][0]["sha256"] = _sha(bytes(data))
    record_path.write_text(json.dumps(forged_record, ensure_ascii=False), "utf-8")
    forged.save(manifests=True)
    forged.validate()
    assert await _verify(tampered_copy) == 1
    out = capsys.readouterr().out
    assert f"{STEM}.renewal-1.pdf: does NOT start with the bytes of attachments/{STEM}.pdf" in out
    assert f"attachments/{STEM}.renewal-1.pdf: 3 signature(s), TOTAL_FAILED" in out
