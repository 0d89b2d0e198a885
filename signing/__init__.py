"""signing: PAdES signatures on pyHanko with keys on PKCS#11 tokens, and NĐ 30/2020 appearances.

Usable without the server::

    from signing import Pin, Token, sign_pdf, B_T, SigningServices
    token = Token.open("/usr/lib/softhsm/libsofthsm2.so", label="agency-hsm", pin=Pin.from_env())
    signer = token.signer("seal", chain=[government_ca])
    services = SigningServices(trust_roots=(root,), tsa_url="http://127.0.0.1:9780/...")
    sign_pdf("in.pdf", "out.pdf", signer, level=B_T, services=services)

and verification (``docs/verification.md``)::

    from signing import VerificationPolicy, verify
    report = verify("in.pdf", VerificationPolicy.from_trust_store())   # a ValidationReport

``signing.verify`` is the function; the module stays importable as ``signing.verify``
(``from signing.verify import verify`` works as before).
"""

from signing.appearance import (
    CopyAppearance,
    CopyType,
    IssuedAttachmentAppearance,
    SealAppearance,
    SignerAppearance,
)
from signing.deferred import SigningSession, async_finish, async_prepare, finish, prepare
from signing.errors import (
    AppearanceError,
    CertificateRejectedError,
    InputPdfError,
    KeyNotFoundError,
    PinError,
    RevocationUnavailableError,
    SessionError,
    SigningError,
    TimestampError,
    TokenError,
)
from signing.report import ValidationReport
from signing.sign import (
    B_B,
    B_LT,
    B_LTA,
    B_T,
    Level,
    SigningServices,
    async_sign_pdf,
    load_pkcs12_signer,
    sign_pdf,
)
from signing.tokens import Pin, Token, TokenSigner

# Binds the package's name `verify` to the function. The submodule stays in sys.modules, so
# `from signing.verify import ...` works as before; to get the module object itself use
# importlib.import_module("signing.verify") (`import signing.verify as m` gives the function).
from signing.verify import VerificationPolicy, verify

__all__ = [
    "B_B",
    "B_LT",
    "B_LTA",
    "B_T",
    "AppearanceError",
    "CertificateRejectedError",
    "CopyAppearance",
    "CopyType",
    "InputPdfError",
    "IssuedAttachmentAppearance",
    "KeyNotFoundError",
    "Level",
    "Pin",
    "PinError",
    "RevocationUnavailableError",
    "SealAppearance",
    "SessionError",
    "SignerAppearance",
    "SigningError",
    "SigningServices",
    "SigningSession",
    "TimestampError",
    "Token",
    "TokenError",
    "TokenSigner",
    "ValidationReport",
    "VerificationPolicy",
    "async_finish",
    "async_prepare",
    "async_sign_pdf",
    "finish",
    "load_pkcs12_signer",
    "prepare",
    "sign_pdf",
    "verify",
]
