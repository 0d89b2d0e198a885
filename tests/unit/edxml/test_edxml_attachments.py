"""Attachments: streaming base64 into sinks, memory staying flat, SDK zips and zip bombs."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import edxml
from edxml import (
    AttachmentMeta,
    DirectorySink,
    DiscardSink,
    Envelope,
    InvalidValueError,
    LimitExceededError,
    Limits,
)
from edxml.attachments import Base64StreamDecoder, Opener, Writable, unzip
from edxml.model import NAMESPACE

ROOT = Path(__file__).resolve().parents[3]


def package(*attachments: tuple[str, str, bytes | str], manifest: bool = True) -> bytes:
    """A package with (content_id, name, content) attachments; str content is sent verbatim."""
    refs = "".join(
        f"<Reference><ContentId>cid:{cid}</ContentId><AttachmentName>{name}</AttachmentName>"
        "<ContentType>application/pdf</ContentType></Reference>"
        for cid, name, _ in attachments
    )
    atts = "".join(
        f"<Attachment><ContentId>cid:{cid}</ContentId><AttachmentName>{name}</AttachmentName>"
        "<ContentTransferEncoded>"
        + (body if isinstance(body, str) else base64.encodebytes(body).decode())
        + "</ContentTransferEncoded></Attachment>"
        for cid, name, body in attachments
    )
    return (
        f'<edXML xmlns="{NAMESPACE}"><edXMLEnvelope><edXMLHeader><MessageHeader>'
        "<From><OrganId>000.00.00.G22</OrganId></From><To><OrganId>000.00.00.H41</OrganId></To>"
        "<Subject>s</Subject></MessageHeader></edXMLHeader>"
        f"<edXMLBody><edXMLManifest>{refs if manifest else ''}</edXMLManifest></edXMLBody>"
        f"</edXMLEnvelope><AttachmentEncoded>{atts}</AttachmentEncoded></edXML>"
    ).encode()


# --- base64 -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_decoder_handles_any_split_and_whitespace(seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(rng.randint(0, 5000))
    text = base64.encodebytes(data).decode().replace("\n", rng.choice(["\n", "\r\n", " \n\t"]))
    out = io.BytesIO()
    decoder = Base64StreamDecoder(out)
    pos = 0
    while pos < len(text):
        step = rng.randint(1, 7)
        decoder.feed(text[pos : pos + step])
        pos += step
    size, digest = decoder.finish()
    assert out.getvalue() == data
    assert size == len(data)
    assert digest == hashlib.sha256(data).hexdigest()


def test_decoder_batches_large_input_across_quantum_boundaries() -> None:
    data = bytes(range(256)) * 4000  # 1 MB: several internal batches
    text = base64.b64encode(data).decode()
    out = io.BytesIO()
    decoder = Base64StreamDecoder(out)
    for start in range(0, len(text), 100_003):  # odd piece size: never a multiple of 4
        decoder.feed(text[start : start + 100_003])
    decoder.finish()
    assert out.getvalue() == data


def test_decoder_tolerates_missing_padding_but_not_garbage() -> None:
    out = io.BytesIO()
    decoder = Base64StreamDecoder(out)
    decoder.feed("aGVsbG8")  # "hello" without its "="
    decoder.finish()
    assert out.getvalue() == b"hello"
    for bad in ("aGVs*G8=", "${__StringFromFile(test.txt,,,)}", "aGVsbG8=aGVs", "a", "hé"):
        with pytest.raises(InvalidValueError):
            broken = Base64StreamDecoder(io.BytesIO(), path="X")
            broken.feed(bad)
            broken.finish()


def test_bad_base64_in_a_package_names_the_attachment() -> None:
    data = package(("a", "a.pdf", b"fine"), ("b", "b.pdf", "not base64 at all!"))
    with pytest.raises(InvalidValueError) as caught:
        edxml.parse(data)
    assert caught.value.path == "AttachmentEncoded/Attachment[2]/ContentTransferEncoded"


# --- sinks --------------------------------------------------------------------------------


class RecordingSink:
    def __init__(self) -> None:
        self.metas: list[AttachmentMeta] = []
        self.closed: list[tuple[int, int, str]] = []
        self.aborted: list[int] = []
        self.buffers: dict[int, io.BytesIO] = {}

    def open(self, meta: AttachmentMeta) -> Writable:
        self.metas.append(meta)
        self.buffers[meta.index] = io.BytesIO()
        return self.buffers[meta.index]

    def close(
        self, meta: AttachmentMeta, writer: Writable, *, size: int, sha256: str
    ) -> Opener | None:
        self.closed.append((meta.index, size, sha256))
        value = self.buffers[meta.index].getvalue()
        return lambda: io.BytesIO(value)

    def abort(self, meta: AttachmentMeta, writer: Writable) -> None:
        self.aborted.append(meta.index)


def test_sink_receives_meta_and_bytes_and_attachment_carries_size_hash_opener() -> None:
    one, two = b"%PDF-1.4 first" * 100, b"second"
    sink = RecordingSink()
    env = edxml.parse(package(("one", "một.pdf", one), ("two", "hai.pdf", two)), sink=sink)
    assert isinstance(env, Envelope)
    assert [(m.index, m.content_id, m.name, m.content_type) for m in sink.metas] == [
        (0, "cid:one", "một.pdf", "application/pdf"),  # type from the manifest
        (1, "cid:two", "hai.pdf", "application/pdf"),
    ]
    assert sink.closed == [
        (0, len(one), hashlib.sha256(one).hexdigest()),
        (1, len(two), hashlib.sha256(two).hexdigest()),
    ]
    first, second = env.attachments
    assert first.data is None and first.size == len(one)
    assert first.sha256 == hashlib.sha256(one).hexdigest()
    assert first.open().read() == one
    assert second.open().read() == two
    assert sink.aborted == []


def test_sink_is_told_to_abort_when_parsing_fails_later(tmp_path: Path) -> None:
    data = package(("one", "a.pdf", b"good bytes"), ("two", "b.pdf", b"more"))
    broken = data.replace(b"</AttachmentEncoded>", b"</Attachment></AttachmentEncoded>")
    sink = DirectorySink(tmp_path)
    with pytest.raises(edxml.NotWellFormedError):
        edxml.parse(broken, sink=sink)
    assert list(tmp_path.iterdir()) == []  # both partial files removed


def test_directory_sink_never_uses_the_senders_file_name(tmp_path: Path) -> None:
    env = edxml.parse(package(("x", "../../etc/passwd", b"payload")), sink=DirectorySink(tmp_path))
    assert isinstance(env, Envelope)
    (att,) = env.attachments
    assert att.name == "../../etc/passwd"
    assert [p.name for p in tmp_path.iterdir()] == ["attachment-0000.bin"]
    with att.open() as stream:
        assert stream.read() == b"payload"


def test_discard_sink_keeps_only_size_and_hash() -> None:
    env = edxml.parse(package(("x", "x.bin", b"12345")), sink=DiscardSink())
    assert isinstance(env, Envelope)
    (att,) = env.attachments
    assert (att.data, att.size, att.sha256) == (None, 5, hashlib.sha256(b"12345").hexdigest())
    with pytest.raises(ValueError, match="sink"):
        att.open()


def test_inline_total_limit_across_attachments() -> None:
    data = package(*[(str(i), f"{i}.bin", b"z" * 3000) for i in range(4)])
    with pytest.raises(LimitExceededError, match="sink"):
        edxml.parse(data, limits=Limits(max_inline_total=10_000))
    assert len(edxml.parse(data, limits=Limits(max_inline_total=12_000)).attachments) == 4  # type: ignore[union-attr]


# --- streaming: memory stays flat -----------------------------------------------------------


def write_big_package(path: Path, decoded_size: int) -> list[str]:
    """Write a package with two attachments of decoded_size / 2 each, streaming; return digests.

    The first attachment is wrapped at 76 columns (CRLF-free MIME style), the second is one
    long line, as the SDK writes it.
    """
    digests = []
    with path.open("wb") as out:
        out.write(
            f'<?xml version="1.0" encoding="UTF-8"?><edXML xmlns="{NAMESPACE}"><edXMLEnvelope>'
            "<edXMLHeader><MessageHeader><From><OrganId>000.00.00.G22</OrganId></From>"
            "<To><OrganId>000.00.00.H41</OrganId></To><Subject>big</Subject></MessageHeader>"
            "</edXMLHeader></edXMLEnvelope><AttachmentEncoded>".encode()
        )
        block = random.Random(7).randbytes(3 * 256 * 1024)
        for index, wrap in enumerate((True, False)):
            out.write(
                f"<Attachment><ContentId>cid:{index}</ContentId><ContentTransferEncoded>".encode()
            )
            digest = hashlib.sha256()
            for _ in range(decoded_size // 2 // len(block)):
                digest.update(block)
                out.write(base64.encodebytes(block) if wrap else base64.b64encode(block))
            out.write(b"</ContentTransferEncoded></Attachment>")
            digests.append(digest.hexdigest())
        out.write(b"</AttachmentEncoded></edXML>")
    return digests


_PARSE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import edxml

    def peak_kb():
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across
        # fork+exec, so a big pytest process would show up as this child's peak.
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    before = peak_kb()
    env = edxml.parse(sys.argv[2], sink=edxml.DiscardSink())
    after = peak_kb()
    print(json.dumps({
        "before_kb": before,
        "after_kb": after,
        "digests": [a.sha256 for a in env.attachments],
        "sizes": [a.size for a in env.attachments],
    }))
    """
)


def test_large_package_streams_with_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.edxml"
    digests = write_big_package(path, 64 * 1024 * 1024)
    assert path.stat().st_size > 85_000_000
    result = subprocess.run(
        [sys.executable, "-c", _PARSE_SCRIPT, str(ROOT), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["digests"] == digests
    assert sum(report["sizes"]) > 60_000_000
    # The base64 text held whole would add at least 86 MB to the peak, the decoded bytes 64 MB
    # more; streaming adds a few MB of buffers.
    grown_mb = (report["after_kb"] - report["before_kb"]) / 1024
    assert grown_mb < 25, f"peak RSS grew by {grown_mb:.0f} MB while parsing"
    assert report["after_kb"] / 1024 < 100


# --- zip ----------------------------------------------------------------------------------


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_unzip_single_file_from_bytes_stream_and_attachment() -> None:
    content = b"%PDF-1.4 " + bytes(range(256)) * 50
    zipped = make_zip({"3f2a.PDF": content})
    for source in (zipped, io.BytesIO(zipped)):
        inner = unzip(source)
        assert (inner.name, inner.size) == ("3f2a.PDF", len(content))
        assert inner.stream.read() == content
    env = edxml.parse(package(("z", "van-ban.pdf", zipped)))
    assert isinstance(env, Envelope)
    assert edxml.attachments.looks_zipped(env.attachments[0])
    assert unzip(env.attachments[0]).stream.read() == content


def test_zip_bomb_by_ratio_is_refused() -> None:
    bomb = make_zip({"bomb.pdf": b"\0" * (50 * 1024 * 1024)})  # ~50 KB, ratio ~1000
    assert len(bomb) < 100_000
    with pytest.raises(LimitExceededError, match="zip bomb"):
        unzip(bomb)


def test_zip_bomb_by_total_size_is_refused() -> None:
    data = random.Random(1).randbytes(3 * 1024 * 1024)  # incompressible: ratio ~1
    with pytest.raises(LimitExceededError):
        unzip(make_zip({"big.bin": data}), Limits(zip_max_uncompressed=1024 * 1024))


def test_zip_that_lies_about_its_size_never_yields_more_than_declared() -> None:
    content = b"A" * (4 * 1024 * 1024)
    honest = make_zip({"x.txt": content})
    # Rewrite the declared uncompressed size (local header and central directory) to 10 bytes.
    real = len(content).to_bytes(4, "little")
    fake = (10).to_bytes(4, "little")
    assert honest.count(real) == 2
    lying = honest.replace(real, fake)
    inner = unzip(lying)
    assert inner.size == 10  # what the header claims
    with pytest.raises(InvalidValueError, match="corrupt"):
        inner.stream.read()


def corrupt_deflate_zip() -> bytes:
    """A well-formed zip whose one member's deflate stream does not decode (zlib.error)."""
    content = random.Random(7).randbytes(5000) + bytes(20000)
    data = bytearray(make_zip({"a.pdf": content}))
    start = 30 + len("a.pdf")  # the member's data, after its local header
    for i in range(start, start + 160):
        data[i] ^= 0x5A
    return bytes(data)


def test_zip_member_whose_deflate_stream_is_corrupt_is_invalid() -> None:
    inner = unzip(corrupt_deflate_zip())
    with pytest.raises(InvalidValueError, match="corrupt"):
        inner.stream.read()


def test_bounded_reader_stops_at_the_allowance() -> None:
    from edxml.attachments import _BoundedReader

    reader = io.BufferedReader(_BoundedReader(io.BytesIO(b"x" * 5000), 4096, "m", 10))
    with pytest.raises(LimitExceededError, match="zip bomb"):
        reader.read()
    ok = io.BufferedReader(_BoundedReader(io.BytesIO(b"x" * 4096), 4096, "m", 10))
    assert len(ok.read()) == 4096


def test_zip_with_too_many_entries_is_refused_before_listing() -> None:
    many = make_zip({f"f{i}.txt": b"" for i in range(100)})
    with pytest.raises(LimitExceededError, match="100 entries"):
        unzip(many)


def test_zip_with_two_files_or_not_a_zip_is_invalid() -> None:
    with pytest.raises(InvalidValueError, match="exactly one"):
        unzip(make_zip({"a.txt": b"a", "b.txt": b"b"}))
    with pytest.raises(InvalidValueError, match="not a zip"):
        unzip(b"%PDF-1.4 plain")
    with pytest.raises(InvalidValueError):
        unzip(make_zip({"a.txt": b"abc" * 1000})[:-30])  # truncated directory
