"""Verify every signature in a PDF, in this process: one trustworthy verdict per signature.

:func:`verify_in_process` does the work; :func:`signing.verify.verify`, the entry point, runs
it in a worker process with a time and memory budget (:mod:`signing.isolation`) by default.

For each signature the report gives the ETSI EN 319 102-1 indication (TOTAL_PASSED /
TOTAL_FAILED / INDETERMINATE + sub-indication), the signer, the chain to the trust store,
revocation checked in **hard-fail** mode (a revoked signer, or one whose status cannot be
established, is never PASSED: SIGNING-NOTES trap 1), signing time and time-stamps, the byte-range
coverage, and what changed after signing (:mod:`signing.diffcheck`). Any exception inside a
library call becomes a FAILED or INDETERMINATE verdict carrying its reason; a diff analysis that
fails counts as ``changes: other``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asn1crypto import x509

from signing.diffcheck import build_diff_policy
from signing.pdfread import UnreadablePdfError, normalise_plain_ecdsa, one_line, open_pdf
from signing.report import (
    FORMAT_FAILURE,
    HASH_FAILURE,
    NO_CERTIFICATE_CHAIN_FOUND,
    SIG_CRYPTO_FAILURE,
    SIGNED_DATA_NOT_FOUND,
    TRY_LATER,
    Changes,
    Indication,
    Revocation,
    SignatureReport,
    Signer,
    Timestamp,
    ValidationReport,
    to_vn_time,
)
from signing.revcache import (
    RevocationCache,
    SharedFetcherBackend,
    caching_fetchers,
    close_fetchers,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 200 * 1024 * 1024

# pyHanko logs expected failures (attacks, untrusted roots) with tracebacks at WARNING; they are
# verdicts for us, not incidents (SIGNING-NOTES trap 12).
_NOISY_LOGGERS = ("pyhanko", "pyhanko_certvalidator", "pyhanko.sign", "pyhanko.pdf_utils")


def quiet_library_loggers() -> None:
    """Lower pyHanko's loggers so verdicts do not flood the logs with tracebacks."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@dataclass(frozen=True)
class VerificationPolicy:
    """How to verify.

    ``trust_roots``: the anchors (DER bytes of certificates, so the policy can cross process
    boundaries); ``online``: fetch OCSP/CRL over the network (else only revocation data
    embedded in the PDF is used); ``revocation_mode``: pyHanko's mode, ``hard-fail`` by default
    and ``require`` for stricter use (never ``soft-fail``: trap 1); ``key_usage``: key usages
    the signer certificate needs (any of them; configurable because real government
    certificates differ, trap 12); ``at_time``: validate as of that moment instead of now;
    ``timeout``/``max_bytes``: the per-file budget of the isolated path; ``fetch_issuers``:
    follow CA-issuers (AIA) URLs to complete a chain (the server does not: such a URL comes
    from a certificate not yet known to reach a trusted root); ``fetch_allow``: None fetches
    from any address, else only public ones and these networks (signing/netguard.py).
    """

    trust_roots: tuple[bytes, ...] = ()
    online: bool = False
    revocation_mode: str = "hard-fail"
    key_usage: frozenset[str] = frozenset({"non_repudiation", "digital_signature"})
    at_time: datetime | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    context_ttl: float = 60.0
    fetch_issuers: bool = True
    fetch_allow: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.revocation_mode not in ("hard-fail", "require"):
            raise ValueError("revocation_mode must be 'hard-fail' or 'require' (trap 1)")

    @classmethod
    def with_roots(cls, roots: list[x509.Certificate], **kwargs: Any) -> VerificationPolicy:
        """A policy trusting ``roots`` (asn1crypto certificates)."""
        return cls(trust_roots=tuple(c.dump() for c in roots), **kwargs)

    @classmethod
    def from_trust_store(cls, **kwargs: Any) -> VerificationPolicy:
        """A policy trusting the configured trust store (:mod:`signing.trust`)."""
        from signing.trust import default_trust_store

        return cls.with_roots(default_trust_store().roots, **kwargs)


@dataclass
class _ContextCache:
    """Validation contexts reused across files in one process (trap 10: reuse, always pass
    roots). A context fixes its notion of "now" and keeps fetched OCSP/CRL responses, so it is
    rebuilt after ``policy.context_ttl`` seconds: cached revocation answers never outlive the
    cache window, and pyHanko still checks each response's own validity period."""

    policy: VerificationPolicy | None = None
    built_at: float = 0.0
    context: Any = None
    roots: list[x509.Certificate] = field(default_factory=list)
    revocation: RevocationCache = field(default_factory=RevocationCache)
    fetchers: Any = None
    fetchers_reach: tuple[bool, tuple[str, ...] | None] = (True, None)

    def get(self, policy: VerificationPolicy) -> Any:
        now = time.monotonic()
        if (
            self.context is None
            or self.policy != policy
            or (policy.at_time is None and now - self.built_at > policy.context_ttl)
        ):
            self.roots = [x509.Certificate.load(der) for der in policy.trust_roots]
            self.context = _new_context(policy, self.roots, fetchers=self.shared_fetchers(policy))
            self.policy = policy
            self.built_at = now
        return self.context

    def close(self) -> None:
        """Close the shared HTTP session (end of a worker, or of a test)."""
        if self.fetchers is not None:
            fetchers, self.fetchers = self.fetchers, None
            with _LOOP_LOCK:
                _process_loop().run_until_complete(close_fetchers(fetchers))

    def shared_fetchers(self, policy: VerificationPolicy) -> Any:
        """The process's caching OCSP/CRL fetchers (None when offline)."""
        if not policy.online:
            return None
        reach = (policy.fetch_issuers, policy.fetch_allow)
        if self.fetchers is not None and self.fetchers_reach != reach:
            self.close()  # another policy: fetchers that reach what it allows
        if self.fetchers is None:
            self.fetchers = caching_fetchers(
                self.revocation,
                timeout=max(1.0, policy.timeout),
                issuers=policy.fetch_issuers,
                allow=policy.fetch_allow,
            )
            self.fetchers_reach = reach
        return self.fetchers


_CACHE = _ContextCache()


def close_shared_resources() -> None:
    """Release this process's HTTP session for OCSP/CRL fetching."""
    _CACHE.close()


# One event loop per process, kept for its lifetime: the shared context's OCSP/CRL fetchers
# hold HTTP sessions bound to the loop they were created on (asyncio.run would close it).
_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def _process_loop() -> asyncio.AbstractEventLoop:
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
    return _LOOP


def _new_context(
    policy: VerificationPolicy,
    roots: list[x509.Certificate],
    *,
    ocsps: list[Any] | None = None,
    crls: list[Any] | None = None,
    other_certs: list[x509.Certificate] | None = None,
    fetchers: Any = None,
) -> Any:
    from pyhanko_certvalidator import ValidationContext

    kwargs: dict[str, Any] = {
        "trust_roots": roots,
        "allow_fetching": policy.online,
        "revocation_mode": policy.revocation_mode,
        "other_certs": other_certs or [],
        # offline hard-fail needs explicit empty lists (trap 10)
        "ocsps": ocsps or [],
        "crls": crls or [],
    }
    if policy.at_time is not None:
        kwargs["moment"] = policy.at_time
    if fetchers is not None:
        kwargs["fetchers"] = fetchers
    return ValidationContext(**kwargs)


# ---------------------------------------------------------------------------------------------


def verify_in_process(
    data: bytes, policy: VerificationPolicy, *, file_name: str | None = None
) -> ValidationReport:
    """Verify in this process (no time budget: use :func:`verify` for untrusted input).

    Not for use inside a running event loop (it runs its own); calls are serialised.
    """
    quiet_library_loggers()
    started = time.monotonic()
    report = ValidationReport.unreadable(data, file_name)
    try:
        if len(data) > policy.max_bytes:
            raise UnreadablePdfError(too_large_message(policy))
        with _LOOP_LOCK:
            _process_loop().run_until_complete(_verify_document(data, policy, report))
    except UnreadablePdfError as exc:
        report.status = "unreadable"
        report.errors.append(str(exc))
    except Exception as exc:  # last line of defence: a verdict, never a traceback
        logger.debug("verification crashed", exc_info=True)
        report.status = "unreadable" if not report.signatures else report.status
        report.errors.append(f"verification error: {one_line(exc)}")
    report.elapsed_ms = int((time.monotonic() - started) * 1000)
    return report


def too_large_message(policy: VerificationPolicy) -> str:
    return f"file larger than the {policy.max_bytes}-byte limit"


async def _verify_document(
    data: bytes, policy: VerificationPolicy, report: ValidationReport
) -> None:
    from pyhanko.sign.fields import enumerate_sig_fields

    reader, notes = open_pdf(data)
    report.errors.extend(notes)
    try:
        fields = list(enumerate_sig_fields(reader, filled_status=True))
    except Exception as exc:
        raise UnreadablePdfError(f"cannot read the form fields: {one_line(exc)}") from exc
    report.status = "signed" if fields else "unsigned"
    if not fields:
        return
    context = _document_context(reader, policy)
    diff_policy = build_diff_policy()
    total_revisions = reader.xrefs.total_revisions
    entries: list[tuple[int, SignatureReport]] = []
    embedded_list: list[Any] = []
    for index, (fq_name, _sig_obj, sig_field) in enumerate(fields):
        sig, embedded = await _verify_field(reader, fq_name, sig_field, index, context, diff_policy)
        if sig.signed_revision is not None:
            sig.revisions_after = max(0, total_revisions - 1 - sig.signed_revision)
        entries.append((sig.signed_revision if sig.signed_revision is not None else -1, sig))
        embedded_list.append((sig, embedded))
    entries.sort(key=lambda e: e[0])
    report.signatures = [s for _, s in entries]
    for i, s in enumerate(report.signatures):
        s.index = i
    _mark_levels(report.signatures)
    for sig, embedded in embedded_list:
        if sig.level == "B-LTA" and embedded is not None:
            await _archive_verdict(sig, embedded, policy)


def _document_context(reader: Any, policy: VerificationPolicy) -> Any:
    """The shared context, or a per-document one preloaded with the file's DSS (B-LT data)."""
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko.sign.validation.errors import NoDSSFoundError

    shared = _CACHE.get(policy)
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return shared
    except Exception:
        logger.debug("unreadable DSS ignored", exc_info=True)
        return shared
    try:
        kwargs: dict[str, Any] = {
            "trust_roots": _CACHE.roots,
            "allow_fetching": policy.online,
            "revocation_mode": policy.revocation_mode,
            "ocsps": [],
            "crls": [],
        }
        if policy.at_time is not None:
            kwargs["moment"] = policy.at_time
        fetchers = _CACHE.shared_fetchers(policy)
        if fetchers is not None:
            kwargs["fetchers"] = fetchers
        return dss.as_validation_context(kwargs)
    except Exception:
        logger.debug("DSS content ignored", exc_info=True)
        return shared


async def _verify_field(
    reader: Any, fq_name: str, sig_field: Any, index: int, context: Any, diff_policy: Any
) -> tuple[SignatureReport, Any]:
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    sig = SignatureReport(
        index=index,
        field=str(fq_name),
        kind="signature",
        indication=Indication.TOTAL_FAILED,
        subindication=FORMAT_FAILURE,
        intact=False,
        changes=Changes.OTHER,
        validation_time=to_vn_time(datetime.now(UTC)),
    )
    try:
        embedded = EmbeddedPdfSignature(reader, sig_field, fq_name)
    except Exception as exc:  # malformed CMS, missing /ByteRange, bare AssertionError ...
        sig.reasons.append(f"cannot parse the signature: {one_line(exc)}")
        sig.subindication = SIGNED_DATA_NOT_FOUND
        return sig, None
    try:
        await _check_signature(embedded, sig, context, diff_policy)
    except Exception as exc:
        sig.indication = Indication.TOTAL_FAILED
        sig.subindication = sig.subindication or FORMAT_FAILURE
        sig.reasons.append(f"verification error: {one_line(exc)}")
        return sig, None
    return sig, embedded


async def _archive_verdict(sig: SignatureReport, embedded: Any, policy: VerificationPolicy) -> None:
    """Re-judge a B-LTA signature with the AdES-LTA process (ETSI EN 319 102-1 § 5.6.3):
    validated at the best signature time proven by the document time-stamp chain, with the
    revocation data embedded in the file, so an archive stays verifiable after its
    certificates expire (trap 2). Integrity findings of our own checks are never overridden."""
    if (
        not sig.intact
        or sig.changes is Changes.OTHER
        or sig.coverage
        not in (
            "entire_revision",
            "entire_file",
        )
    ):
        return
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (
        CertificateFetchingRule,
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )
    from pyhanko_certvalidator.registry import SimpleTrustManager

    # hard-fail: revocation must be established wherever a certificate declares where
    rule = (
        RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
        if policy.revocation_mode == "require"
        else RevocationCheckingRule.CHECK_IF_DECLARED
    )
    cert_policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=_CACHE.roots),
        revinfo_policy=CertRevTrustPolicy(
            RevocationCheckingPolicy(ee_certificate_rule=rule, intermediate_ca_cert_rule=rule)
        ),
    )
    fetching = (
        RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH
        if policy.online
        else RevinfoOnlineFetchingRule.LOCAL_ONLY
    )
    shared = _CACHE.shared_fetchers(policy)
    gathering = RevocationInfoGatheringSpec(
        online_fetching_rule=fetching,
        fetcher_backend=SharedFetcherBackend(shared) if shared is not None else None,
        certificate_fetching_rule=(
            CertificateFetchingRule.FOLLOW_ONLINE_RULE
            if policy.fetch_issuers
            else CertificateFetchingRule.NEVER_FETCH
        ),
    )
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=cert_policy,
            revinfo_gathering_policy=gathering,
            key_usage_settings=_key_usage(policy),
        ),
        diff_policy=build_diff_policy(),
    )
    timing = None
    if policy.at_time is not None:
        timing = ValidationTimingInfo(
            validation_time=policy.at_time,
            best_signature_time=policy.at_time,
            point_in_time_validation=True,
        )
    try:
        result = await ades_lta_validation(embedded, spec, timing_info=timing)
    except Exception as exc:
        sig.reasons.append(f"AdES-LTA validation not possible: {one_line(exc)}")
        return
    sub = result.ades_subindic
    sig.validation_model = "ades-lta"
    best = getattr(result, "best_signature_time", None)
    if best is not None:
        sig.reasons.append(f"AdES-LTA: signature proven to exist at {to_vn_time(best)}")
    indication = _indication_of(sub)
    if indication is Indication.TOTAL_PASSED:
        sig.indication = Indication.TOTAL_PASSED
        sig.subindication = None
        sig.trusted = True
    else:
        sig.indication = indication
        sig.subindication = str(getattr(sub, "name", sub))
        if result.failure_msg:
            sig.reasons.append(f"AdES-LTA: {result.failure_msg}"[:300])


async def _check_signature(
    embedded: Any, sig: SignatureReport, context: Any, diff_policy: Any
) -> None:
    from pyhanko.sign.diff_analysis import ModificationLevel, SuspiciousModification
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.pdf_embedded import (
        async_validate_pdf_signature,
        async_validate_pdf_timestamp,
    )

    is_timestamp = embedded.sig_object_type == "/DocTimeStamp"
    sig.kind = "document_timestamp" if is_timestamp else "signature"
    byte_range = embedded.byte_range
    try:
        sig.byte_range = [int(x) for x in byte_range]
    except Exception:
        sig.byte_range = []
    sig.signed_revision = embedded.signed_revision
    try:
        sig.signer = _signer(embedded.signer_cert)
    except Exception as exc:
        sig.reasons.append(f"no signer certificate: {one_line(exc)}")
    if normalise_plain_ecdsa(embedded.signer_info):
        sig.reasons.append("plain-ECDSA signature value (BSI TR-03111) checked as DER")

    # 1. coverage, then what changed afterwards; a failing diff analysis is "other"
    embedded.compute_integrity_info(skip_diff=True)
    coverage = embedded.coverage
    sig.coverage = coverage.name.lower() if coverage is not None else None
    try:
        embedded.diff_result = embedded.evaluate_modifications(diff_policy)
    except Exception as exc:
        embedded.diff_result = SuspiciousModification(
            f"difference analysis failed: {one_line(exc)}"
        )
    diff = embedded.diff_result
    if isinstance(diff, SuspiciousModification):
        sig.changes = Changes.OTHER
        sig.changes_detail = str(diff).splitlines()[0][:500] if str(diff) else "suspicious"
    else:
        level = diff.modification_level
        sig.changes = Changes.NONE if level == ModificationLevel.NONE else Changes.PERMITTED
        sig.changes_detail = level.name.lower()
        docmdp = embedded.docmdp_level
        if docmdp is not None and level.value > docmdp.value:
            sig.changes = Changes.OTHER
            sig.changes_detail = f"{level.name.lower()} exceeds certification level {docmdp.name}"
    if embedded.docmdp_level is not None:
        sig.certification = embedded.docmdp_level.name.lower()

    # 2. cryptography, chain, revocation, time-stamps
    status: Any
    try:
        if is_timestamp:
            status = await async_validate_pdf_timestamp(embedded, context, skip_diff=True)
        else:
            status = await async_validate_pdf_signature(
                embedded,
                signer_validation_context=context,
                ts_validation_context=context,
                key_usage_settings=_key_usage(_CACHE.policy),
                skip_diff=True,
            )
    except SignatureValidationError as exc:
        sub = getattr(exc, "ades_subindication", None)
        sig.indication = _indication_of(sub) if sub is not None else Indication.TOTAL_FAILED
        sig.subindication = sub.name if sub is not None else FORMAT_FAILURE
        sig.reasons.append(one_line(exc))
        return
    except (TimeoutError, OSError) as exc:
        sig.indication = Indication.INDETERMINATE
        sig.subindication = TRY_LATER
        sig.reasons.append(one_line(exc))
        return
    except Exception as exc:  # e.g. a bare AssertionError on malformed CMS
        sig.indication = Indication.TOTAL_FAILED
        sig.subindication = FORMAT_FAILURE
        sig.reasons.append(f"malformed signature: {one_line(exc)}")
        return
    _fill_from_status(sig, status, is_timestamp, coverage)


def _fill_from_status(sig: SignatureReport, status: Any, is_timestamp: bool, coverage: Any) -> None:
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    sig.intact = bool(status.intact)
    sig.crypto_valid = bool(status.valid)
    sig.trusted = bool(status.trusted)
    if status.signing_cert is not None:
        sig.signer = _signer(status.signing_cert)
    path = status.validation_path
    if path is not None:
        try:
            sig.chain = [c.subject.human_friendly for c in path.iter_certs(include_root=True)]
        except Exception:
            sig.chain = []
    sig.revocation = _revocation(status)
    if is_timestamp:
        sig.signing_time = to_vn_time(status.timestamp)
        sig.signing_time_source = "timestamp"
    else:
        tst = status.timestamp_validity
        if tst is not None:
            sig.timestamps.append(_timestamp("signature", tst))
        cts = status.content_timestamp_validity
        if cts is not None:
            sig.timestamps.append(_timestamp("content", cts))
        if tst is not None and tst.intact and tst.valid and tst.trusted:
            sig.signing_time = to_vn_time(tst.timestamp)
            sig.signing_time_source = "timestamp"
        elif status.signer_reported_dt is not None:
            sig.signing_time = to_vn_time(status.signer_reported_dt)
            sig.signing_time_source = "claimed"

    # the verdict, most serious problem first
    if not status.intact:
        _verdict(sig, Indication.TOTAL_FAILED, HASH_FAILURE, "the signed bytes were changed")
    elif not status.valid:
        _verdict(sig, Indication.TOTAL_FAILED, SIG_CRYPTO_FAILURE, "the signature value is wrong")
    elif coverage is None or coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        _verdict(
            sig,
            Indication.TOTAL_FAILED,
            FORMAT_FAILURE,
            "the byte range does not cover the whole signed revision",
        )
    elif sig.changes is Changes.OTHER:
        _verdict(
            sig,
            Indication.TOTAL_FAILED,
            FORMAT_FAILURE,
            f"the document was modified after signing: {sig.changes_detail}",
        )
    elif status.trust_problem_indic is not None:
        sub = status.trust_problem_indic
        _verdict(sig, _indication_of(sub), sub.name, f"certificate problem: {sub.name}")
    elif getattr(status, "seed_value_constraint_error", None) is not None:
        _verdict(
            sig,
            Indication.TOTAL_FAILED,
            "SIG_CONSTRAINTS_FAILURE",
            str(status.seed_value_constraint_error),
        )
    elif not status.trusted:
        _verdict(sig, Indication.INDETERMINATE, NO_CERTIFICATE_CHAIN_FOUND, "not trusted")
    else:
        sig.indication = Indication.TOTAL_PASSED
        sig.subindication = None


def _verdict(sig: SignatureReport, indication: Indication, sub: str, reason: str) -> None:
    sig.indication = indication
    sig.subindication = sub
    sig.reasons.append(reason)


def _indication_of(sub: Any) -> Indication:
    status = getattr(sub, "status", None)
    name = getattr(status, "name", "")
    if name == "FAILED":
        return Indication.TOTAL_FAILED
    if name == "PASSED":
        return Indication.TOTAL_PASSED
    return Indication.INDETERMINATE


def _key_usage(policy: VerificationPolicy | None) -> Any:
    from pyhanko.sign.validation.settings import KeyUsageConstraints

    usages = set(policy.key_usage) if policy else {"non_repudiation"}
    return KeyUsageConstraints(key_usage=usages, match_all_key_usages=False)


def _revocation(status: Any) -> Revocation:
    mode = _CACHE.policy.revocation_mode if _CACHE.policy else "hard-fail"
    details = getattr(status, "revocation_details", None)
    if details is not None:
        when = to_vn_time(details.revocation_date)
        return Revocation(mode=mode, status="revoked", detail=f"revoked since {when}")
    if status.trusted:
        return Revocation(mode=mode, status="good")
    if status.trust_problem_indic is not None:
        return Revocation(mode=mode, status="unknown", detail=status.trust_problem_indic.name)
    return Revocation(mode=mode, status="not-checked", detail="no trusted chain")


def _timestamp(kind: str, tst: Any) -> Timestamp:
    tsa = None
    try:
        tsa = tst.signing_cert.subject.human_friendly
    except Exception:
        tsa = None
    return Timestamp(
        kind=kind,
        time=to_vn_time(tst.timestamp),
        intact=bool(tst.intact and tst.valid),
        trusted=bool(tst.trusted),
        tsa=tsa,
    )


def _signer(cert: x509.Certificate) -> Signer:
    subject = cert.subject.native
    validity = cert["tbs_certificate"]["validity"]
    return Signer(
        name=_first(subject.get("common_name")),
        organization=_first(subject.get("organization_name")),
        title=_first(subject.get("title")),
        subject=cert.subject.human_friendly,
        issuer=cert.issuer.human_friendly,
        serial=format(cert.serial_number, "x"),
        not_before=to_vn_time(validity["not_before"].native),
        not_after=to_vn_time(validity["not_after"].native),
    )


def _first(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else None
    return str(value)


def _mark_levels(sigs: list[SignatureReport]) -> None:
    """PAdES baseline level of each signature, as far as the file shows it."""
    for i, s in enumerate(sigs):
        if s.kind != "signature":
            continue
        later_doc_ts = any(t.kind == "document_timestamp" for t in sigs[i + 1 :])
        has_ts = any(t.kind == "signature" for t in s.timestamps)
        if later_doc_ts:
            s.level = "B-LTA"
        elif has_ts:
            s.level = "B-T"
        else:
            s.level = "B-B"
