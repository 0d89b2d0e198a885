"""``lienthong sign``: sign a PDF locally with a key on a PKCS#11 token (ký số).

    lienthong sign IN.pdf -o OUT.pdf --token-module /usr/lib/softhsm/libsofthsm2.so \\
        --token-label agency-hsm --key-label seal --chain gov.cert.pem \\
        [--level B-B|B-T|B-LT|B-LTA] [--tsa URL] [--trust-root root.cert.pem] \\
        [--profile none|signer|seal|issued-attachment|copy] [--image PNG] ...

Offline except for the TSA (B-T and above) and OCSP/CRL (when trust roots are given). The PIN
comes from ``--pin-file``, else ``LIENTHONG_PIN``, else a prompt; it is never printed. Signing a
file that is already signed adds a signature incrementally.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from server.cli import CliError
from server.cli.options import resolve_pin

PROFILES = ("none", "signer", "seal", "issued-attachment", "copy")


def _load_certs(paths: list[str]) -> list[Any]:
    from asn1crypto import pem, x509

    certs: list[x509.Certificate] = []
    for name in paths:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read certificate {name}: {exc.strerror}") from None
        blobs = (
            [der for _, _, der in pem.unarmor(data, multiple=True)] if pem.detect(data) else [data]
        )
        try:
            certs.extend(x509.Certificate.load(der) for der in blobs)
            for cert in certs:
                _ = cert.subject  # parse now: a bad file fails here, in one line
        except ValueError as exc:
            raise CliError(f"{name} is not an X.509 certificate: {exc}") from None
    return certs


def _appearance(args: argparse.Namespace) -> Any:
    from signing import (
        CopyAppearance,
        CopyType,
        IssuedAttachmentAppearance,
        SealAppearance,
        SignerAppearance,
    )

    def need(option: str) -> str:
        value = getattr(args, option.replace("-", "_"))
        if not value:
            raise CliError(f"--profile {args.profile} needs --{option}")
        return str(value)

    if args.profile == "none":
        return None
    if args.profile == "signer":
        title = need("title").replace("\\n", "\n")  # a literal \n on the command line
        return SignerAppearance(title=title, full_name=need("name"), image=args.image)
    if args.profile == "seal":
        return SealAppearance(image=need("image"), over_field=args.over_field)
    if args.profile == "issued-attachment":
        return IssuedAttachmentAppearance(number=need("number"), agency=need("agency"))
    copy_types = {c.name.replace("_", "-").lower(): c for c in CopyType}
    kind = need("copy-type")
    if kind not in copy_types:
        raise CliError(f"--copy-type must be one of {', '.join(copy_types)}")
    return CopyAppearance(copy_type=copy_types[kind], agency=need("agency"))


def _cmd_sign(args: argparse.Namespace) -> int:
    from signing import Level, SigningError, SigningServices, Token, sign_pdf

    if args.session:  # the second step of a server's two-step session (issue 6)
        from server.cli.sign_session import sign_session

        return sign_session(args)
    if not args.input or not args.output:
        raise CliError("give the PDF to sign and -o OUTPUT (or --session ID --server URL)")
    source, target = Path(args.input), Path(args.output)
    if source.resolve() == target.resolve():
        raise CliError("the output must differ from the input (the input is never modified)")
    if not source.is_file():  # before asking for a PIN or opening the token
        raise CliError(f"{source}: no such file")
    try:
        level = Level.parse(args.level)
        appearance = _appearance(args)
        chain = _load_certs(args.chain)
        roots = _load_certs(args.trust_root)
        pin = resolve_pin(args)
        token = Token.open(
            args.token_module, label=args.token_label, serial=args.token_serial, pin=pin
        )
        signer = token.signer(args.key_label, cert_label=args.cert_label, chain=chain)
        services = SigningServices(trust_roots=tuple(roots), tsa_url=args.tsa,
                                   other_certs=tuple(chain))  # fmt: skip
        try:
            sign_pdf(
                source, target, signer, level=level, appearance=appearance, field=args.field,
                reason=args.reason, location=args.location, services=services,
            )  # fmt: skip
        finally:
            services.close()
    except SigningError as exc:
        raise CliError(str(exc)) from None
    print(f"signed ({level.value}): {target}")
    return 0


def register(sub: Any) -> None:
    """Add the ``sign`` command to the ``lienthong`` parser."""
    p = sub.add_parser("sign", help="sign a PDF with a key on a PKCS#11 token (ký số PAdES)")
    p.add_argument(
        "input", nargs="?", help="PDF to sign (already signed files get one more signature)"
    )
    p.add_argument("-o", "--output", help="signed PDF to write (atomically)")
    p.add_argument("--session", help="sign this session of the axis at --server instead")
    p.add_argument("--server", help="axis base URL for --session (default: $LIENTHONG_SERVER)")
    p.add_argument("--token", help="agency bearer token for --session (default: $LIENTHONG_TOKEN)")
    p.add_argument(
        "--token-module",
        default=os.environ.get("LIENTHONG_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"),
        help="PKCS#11 module (default: $LIENTHONG_PKCS11_MODULE or SoftHSM2)",
    )
    token = p.add_mutually_exclusive_group(required=True)
    token.add_argument("--token-label", help="label of the token")
    token.add_argument("--token-serial", help="serial number of the token")
    p.add_argument("--key-label", required=True, help="label of the private key")
    p.add_argument("--cert-label", help="label of the certificate (default: the key label)")
    p.add_argument("--chain", action="append", default=[], help="intermediate CA cert (PEM/DER)")
    p.add_argument("--pin-file", help="file holding the PIN (else $LIENTHONG_PIN, else a prompt)")
    p.add_argument("--level", default="B-B", help="B-B, B-T, B-LT or B-LTA (default B-B)")
    p.add_argument("--tsa", help="RFC 3161 time-stamping URL (B-T and above)")
    p.add_argument(
        "--trust-root", action="append", default=[],
        help="trust anchor (PEM/DER): the signer is checked (OCSP/CRL) before signing; "
        "required for B-LT/B-LTA",
    )  # fmt: skip
    p.add_argument("--profile", choices=PROFILES, default="none", help="NĐ 30 appearance")
    p.add_argument("--image", help="signature (signer) or seal (seal) image, transparent PNG")
    p.add_argument("--title", help="signer's title, e.g. 'KT. CHỦ TỊCH\\nPHÓ CHỦ TỊCH'")
    p.add_argument("--name", help="signer's full name")
    p.add_argument("--over-field", help="seal: the signer's field to overlap")
    p.add_argument("--number", help="issued-attachment: document number/code")
    p.add_argument("--agency", help="issued-attachment/copy: agency name")
    p.add_argument("--copy-type", help="copy: sao-y, sao-luc or trich-sao")
    p.add_argument("--field", help="signature field name (default: SignatureN)")
    p.add_argument("--reason", help="reason recorded in the signature")
    p.add_argument("--location", help="location recorded in the signature")
    p.set_defaults(func=_cmd_sign)
