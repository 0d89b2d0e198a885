"""Verification throughput: our verifier vs stock pyHanko with a fresh validation context per
document, side by side, on 1-page signed PDFs with online revocation (hard-fail) against the
local OCSP/CRL responder of the test PKI.

    .venv/bin/python bench/verify_bench.py [--docs 40]

Prints documents per second for each and the ratio (target: at least 10x).
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _sign_many(pki, count: int) -> list[bytes]:  # type: ignore[no-untyped-def]
    import fixtures_pki
    from pyhanko.keys import load_private_key_from_pemder
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    key = load_private_key_from_pemder(str(pki.key_path("officer")), passphrase=None)
    signer = signers.SimpleSigner(
        signing_cert=pki.cert("officer"),
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs([pki.cert("gov")]),
    )
    out = []
    for i in range(count):
        buf = io.BytesIO()
        pdf = fixtures_pki.minimal_pdf(text=f"Cong van so {i}")
        signers.sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(pdf)),
            signers.PdfSignatureMetadata(field_name="ChuKy1"),
            signer=signer,
            output=buf,
        )
        out.append(buf.getvalue())
    return out


def stock(pki, docs: list[bytes]) -> float:  # type: ignore[no-untyped-def]
    """pyHanko as documented: a fresh hard-fail, fetching context per document."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    started = time.perf_counter()
    for data in docs:
        reader = PdfFileReader(io.BytesIO(data))
        context = ValidationContext(
            trust_roots=[pki.root_cert], allow_fetching=True, revocation_mode="hard-fail"
        )
        status = validate_pdf_signature(reader.embedded_signatures[0], context)
        assert status.bottom_line, status.pretty_print_details()
    return len(docs) / (time.perf_counter() - started)


def ours_in_process(pki, docs: list[bytes]) -> float:  # type: ignore[no-untyped-def]
    from signing.report import Indication
    from signing.verify import VerificationPolicy, close_shared_resources, verify_in_process

    policy = VerificationPolicy.with_roots([pki.root_cert], online=True)
    verify_in_process(docs[0], policy)  # warm-up: imports, first OCSP/CRL fetch
    started = time.perf_counter()
    for data in docs:
        report = verify_in_process(data, policy)
        assert report.signatures[0].indication is Indication.TOTAL_PASSED, report.to_json()
    rate = len(docs) / (time.perf_counter() - started)
    close_shared_resources()
    return rate


def ours_pool(pki, docs: list[bytes], workers: int) -> float:  # type: ignore[no-untyped-def]
    from signing.isolation import VerifierPool
    from signing.report import Indication
    from signing.verify import VerificationPolicy

    policy = VerificationPolicy.with_roots([pki.root_cert], online=True)
    pool = VerifierPool(size=workers)
    try:
        with ThreadPoolExecutor(workers) as threads:
            list(threads.map(lambda d: pool.verify(d, policy), docs[:workers]))  # warm-up
            started = time.perf_counter()
            reports = list(threads.map(lambda d: pool.verify(d, policy), docs))
            elapsed = time.perf_counter() - started
    finally:
        pool.close()
    assert all(r.signatures[0].indication is Indication.TOTAL_PASSED for r in reports)
    return len(docs) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    import fixtures_pki

    from signing import devpki

    with tempfile.TemporaryDirectory() as tmp:
        pki = fixtures_pki.make_pki(Path(tmp) / "pki")
        docs = _sign_many(pki, args.docs)
        with devpki.PkiServer(pki):
            base = stock(pki, docs)
            single = ours_in_process(pki, docs)
            pooled = ours_pool(pki, docs, args.workers)
    print(f"documents: {args.docs} (1 page, B-B, online OCSP+CRL, hard-fail)")
    print(f"pyHanko, fresh context per document : {base:7.1f} docs/s")
    print(f"ours, one process (shared context)   : {single:7.1f} docs/s  ({single / base:.1f}x)")
    label = f"ours, {args.workers} isolated workers"
    print(f"{label:<37}: {pooled:7.1f} docs/s  ({pooled / base:.1f}x)")


if __name__ == "__main__":
    main()
