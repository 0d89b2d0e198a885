"""The archive: record JSON, BagIt package, archivist role, CLI export and verify."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import bagit
import pytest
from axis_client import NGHE_AN, OUTSIDER, SO_TTTT, VPCP, Axis, document, sha256, status

from edxml import StatusCode
from server.cli import main
from server.http.appkeys import DATABASE
from server.runtime.tokens import new_token
from storage.repos.tokens import TokenRepo

# Corpus PDFs name Internet hosts in their certificates: no fetching (127.0.0.1 only).
pytestmark = pytest.mark.usefixtures("offline_verification")
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf"
SIGNED_PDF = (
    CORPUS
    / "rub-pdf-attacker/hide/variant-1_hide-via-referenced-object"
    / "3_original-document-shadowed-signed.pdf"
)


async def _archivist(axis: Axis, organ_id: str) -> str:
    token, token_hash = new_token()
    async with axis.client.app[DATABASE].transaction() as tx:
        await TokenRepo(tx).create(organ_id, token_hash, label="lưu trữ", roles=["archivist"])
    return token


async def _get(axis: Axis, path: str, token: str) -> tuple[int, bytes]:
    resp = await axis.client.get(path, headers={"Authorization": f"Bearer {token}"})
    return resp.status, await resp.read()


@pytest.fixture
async def sent(axis: Axis) -> tuple[dict, bytes]:
    pdf = SIGNED_PDF.read_bytes()
    package = document(
        VPCP, [NGHE_AN, SO_TTTT], attachments=[("Quyết định.pdf", "application/pdf", pdf)]
    )
    receipt = await axis.send_ok(VPCP, package)
    resp = await axis.send_status(NGHE_AN, status(NGHE_AN, package, StatusCode.ACCEPTED))
    assert resp.status == 201
    return receipt, pdf


async def test_archive_record_for_parties_and_their_archivists(
    axis: Axis, sent: tuple[dict, bytes]
) -> None:
    receipt, pdf = sent
    path = f"/api/v1/archive/{receipt['id']}"
    archivist = await _archivist(axis, NGHE_AN)
    outsider_archivist = await _archivist(axis, OUTSIDER)
    for token in (axis.tokens[VPCP], axis.tokens[NGHE_AN], axis.tokens[SO_TTTT], archivist):
        code, body = await _get(axis, path, token)
        assert code == 200, body
    for token in (axis.tokens[OUTSIDER], outsider_archivist):
        code, _ = await _get(axis, path, token)
        assert code == 404
        code, _ = await _get(axis, path + "/package", token)
        assert code == 404
    code, _ = await _get(axis, "/api/v1/archive/0000000000000000", archivist)
    assert code == 404

    code, body = await _get(axis, path, archivist)
    record = json.loads(body)
    assert record["sender"] == VPCP
    assert sorted(record["recipients"]) == sorted([NGHE_AN, SO_TTTT])
    assert record["package"]["sha256"] == receipt["sha256"]
    assert record["package"]["received_sha256"]
    [att] = record["attachments"]
    assert att["name"] == "Quyết định.pdf" and att["size"] == len(pdf)
    # The attachment link works for the archivist (read-only access to documents).
    code, fetched = await _get(axis, att["href"], archivist)
    assert code == 200 and fetched == pdf
    [st] = record["statuses"]
    assert st["code"] == "03" and st["sender"] == NGHE_AN
    assert isinstance(record["verification"], list)
    assert all(receipt["id"] in e["objects"] for e in record["audit"])


async def test_archivist_token_only_reads(axis: Axis, sent: tuple[dict, bytes]) -> None:
    archivist = await _archivist(axis, NGHE_AN)
    for method, path in (("POST", "/api/v1/documents"), ("GET", "/api/v1/inbox")):
        resp = await axis.client.request(
            method,
            path,
            data=b"<x/>",
            headers={"Authorization": f"Bearer {archivist}", "Content-Type": "application/xml"},
        )
        assert resp.status == 403
        assert (await resp.json())["type"] == "/problems/role-not-allowed"


async def test_bagit_package(axis: Axis, sent: tuple[dict, bytes], tmp_path: Path) -> None:
    receipt, pdf = sent
    code, body = await _get(axis, f"/api/v1/archive/{receipt['id']}/package", axis.tokens[SO_TTTT])
    assert code == 200
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        zf.extractall(tmp_path)
    bag_dir = tmp_path / f"lienthong-{receipt['id']}"
    bag = bagit.Bag(str(bag_dir))
    bag.validate()  # every payload file against manifest-sha256.txt
    assert "sha256" in bag.algorithms
    info = bag.info
    assert info["Lienthong-Sender-Organ-Id"] == VPCP
    assert sorted(info["Lienthong-Recipient-Organ-Id"]) == sorted([NGHE_AN, SO_TTTT])
    assert info["Lienthong-Notation"] == "VPCP-TTĐT"
    assert info["Lienthong-Number"].isdigit()
    assert info["Lienthong-Promulgation-Date"] == "2024-05-01"
    assert info["Bagging-Date"]
    stored = (bag_dir / "data" / "package.edxml").read_bytes()
    assert sha256(stored) == receipt["sha256"]
    [attachment] = (bag_dir / "data" / "attachments").iterdir()
    assert attachment.read_bytes() == pdf
    record = json.loads((bag_dir / "data" / "archive.json").read_text("utf-8"))
    assert record["id"] == receipt["id"]


@pytest.mark.sqlite_only  # the CLI is given --data-dir only: its database is the SQLite file
async def test_cli_grant_export_and_verify(
    axis: Axis, sent: tuple[dict, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt, _ = sent
    data_dir = str(axis.config.storage.data_dir)
    code = await asyncio.to_thread(
        main, ["agency", "grant", NGHE_AN, "archivist", "--data-dir", data_dir]
    )
    assert code == 0
    token = capsys.readouterr().out.strip()
    server = str(axis.client.make_url("")).rstrip("/")
    out = tmp_path / "out"
    args = [
        "archive",
        "export",
        receipt["id"],
        "-o",
        str(out),
        "--server",
        server,
        "--token",
        token,
    ]
    assert await asyncio.to_thread(main, args) == 0
    bag_dir = out / f"lienthong-{receipt['id']}"
    assert "every hash checked" in capsys.readouterr().out

    code = await asyncio.to_thread(main, ["archive", "verify", str(bag_dir)])
    printed = capsys.readouterr().out
    assert "valid" in printed
    # The demo-key signature is intact but its root is not in the trust store.
    assert "1 signature(s)" in printed
    assert code == 2  # INDETERMINATE: exit code 2

    # Change one byte of the archived PDF: verify names the bag invalid.
    [attachment] = (bag_dir / "data" / "attachments").iterdir()
    data = bytearray(attachment.read_bytes())
    data[len(data) // 2] ^= 0x01
    attachment.write_bytes(bytes(data))
    assert await asyncio.to_thread(main, ["archive", "verify", str(bag_dir)]) == 1
    assert "not valid" in capsys.readouterr().err

    # The zip form verifies too.
    args = [
        "archive",
        "export",
        receipt["id"],
        "-o",
        str(out),
        "--zip",
        "--server",
        server,
        "--token",
        token,
    ]
    assert await asyncio.to_thread(main, args) == 0
    assert await asyncio.to_thread(
        main, ["archive", "verify", str(out / f"lienthong-{receipt['id']}.zip")]
    ) in (0, 2)


def test_cli_verify_of_a_file_that_is_not_a_zip_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_bag = tmp_path / "cong-van.xml"
    not_a_bag.write_bytes(b"<edXML/>")
    assert main(["archive", "verify", str(not_a_bag)]) == 1
    err = capsys.readouterr().err
    assert err == f"lienthong: error: {not_a_bag} is neither a bag directory nor a zip file\n"


def test_cli_renew_needs_an_existing_data_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo"
    assert main(["archive", "renew", "--data-dir", str(missing)]) == 1
    assert "no database at" in capsys.readouterr().err
    assert not missing.exists()  # a mistyped --data-dir does not create an empty axis
