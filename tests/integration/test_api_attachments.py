"""Attachments: decoded from base64, unzipped when the SDK zipped them, with a UTF-8 name."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from urllib.parse import unquote

from axis_client import NGHE_AN, VPCP, Axis, document

from edxml.attachments import unzip

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "edxml" / "sdk-samples"


async def test_plain_attachments_with_utf8_names(axis: Axis) -> None:
    files = [
        ("Quyết định số 12.pdf", "application/pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40),
        ("bảng kê.txt", "text/plain", "Xin chào Nghệ An".encode()),
    ]
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN], attachments=files))
    meta = await (await axis.get(f"/api/v1/documents/{receipt['id']}/meta", NGHE_AN)).json()
    assert [(a["index"], a["name"]) for a in meta["attachments"]] == [
        (0, files[0][0]),
        (1, files[1][0]),
    ]
    for index, (name, ctype, data) in enumerate(files):
        resp = await axis.get(f"/api/v1/documents/{receipt['id']}/attachments/{index}", NGHE_AN)
        assert resp.status == 200
        assert await resp.read() == data
        assert resp.headers["Content-Type"].startswith(ctype)
        disposition = resp.headers["Content-Disposition"]
        assert disposition.startswith("attachment;")
        encoded = disposition.split("filename*=UTF-8''", 1)[1]
        assert unquote(encoded) == name
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}/attachments/2", NGHE_AN)
    assert resp.status == 404
    # Nothing decoded is left behind in the spool.
    assert (await axis.snapshot())["spool"] == []


async def test_zipped_attachment_is_unzipped(axis: Axis) -> None:
    inner = "Nội dung công văn".encode() * 500
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("6f1c2e9a-uuid.docx", inner)
    files = [("Công văn 15.docx", "application/zip", buffer.getvalue())]
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN], attachments=files))
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}/attachments/0", NGHE_AN)
    assert resp.status == 200
    assert await resp.read() == inner
    assert "wordprocessingml" in resp.headers["Content-Type"]
    assert unquote(resp.headers["Content-Disposition"].split("''", 1)[1]) == "Công văn 15.docx"


async def test_sdk_corpus_package(axis: Axis) -> None:
    """The national SDK's own sample (edoc_new.edxml), ids replaced by our agencies."""
    raw = (CORPUS / "edoc_new.edxml").read_bytes()
    body = raw.replace(b"000.00.00.A80", VPCP.encode()).replace(b"28.22.H17", NGHE_AN.encode())
    receipt = await axis.send_ok(VPCP, body)
    meta = await (await axis.get(f"/api/v1/documents/{receipt['id']}/meta", NGHE_AN)).json()
    [attachment] = meta["attachments"]
    assert attachment["name"] == "1896_QD-TTg_m_294779.doc"
    assert attachment["content_type"] == "application/zip"
    # The stored package keeps the sender's bytes, with the axis TraceHeader added after the
    # sender's own TraceHeader (inside the sender's TraceHeaderList, same prefix).
    stored = await (await axis.get(f"/api/v1/documents/{receipt['id']}", NGHE_AN)).read()
    assert len(stored) > len(body)
    assert meta["trace_headers"][0]["organ_id"] == "000.00.00.G22"
    assert meta["trace_headers"][-1]["organ_id"] == axis.config.server.axis_id
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}/attachments/0", NGHE_AN)
    assert resp.status == 200
    content = await resp.read()
    import edxml

    expected = unzip(edxml.parse(body).attachments[0].data).stream.read()  # type: ignore[union-attr]
    assert content == expected
    assert unquote(resp.headers["Content-Disposition"].split("''", 1)[1]) == attachment["name"]
    assert resp.headers["Content-Type"] == "application/msword"
