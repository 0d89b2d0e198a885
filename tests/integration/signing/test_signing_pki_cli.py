"""``lienthong pki dev`` writes the test PKI; keys stay private and are re-used on a rerun."""

from __future__ import annotations

import stat
from pathlib import Path

import fixtures_pki
from asn1crypto import pem, x509

from server.cli import main
from signing import devpki


def test_signing_pki_dev_generates_and_reuses_keys(tmp_path: Path, capsys) -> None:
    target = tmp_path / "pki"
    port = fixtures_pki.free_port()
    assert main(["pki", "dev", str(target), "--port", str(port)]) == 0
    assert f"http://127.0.0.1:{port}" in capsys.readouterr().out
    keys = sorted(p.name for p in (target / "keys").iterdir())
    assert "officer.key.pem" in keys and "seal.key.pem" in keys
    for key in (target / "keys").iterdir():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    officer_pem = (target / "certs" / "officer.cert.pem").read_bytes()
    _, _, der = pem.unarmor(officer_pem)
    officer = x509.Certificate.load(der)
    assert officer.subject.native["common_name"] == "Nguyễn Văn Ánh"
    assert officer.subject.native["title"] == "Chủ tịch"
    ocsp_urls = [d["access_location"] for d in officer.authority_information_access_value.native]
    assert ocsp_urls == [f"http://127.0.0.1:{port}/lienthong-test/ocsp/gov"]
    assert (target / "crls" / "gov.crl").stat().st_size > 0
    # Rerun: same keys, so the same certificates.
    assert main(["pki", "dev", str(target), "--port", str(port)]) == 0
    assert (target / "certs" / "officer.cert.pem").read_bytes() == officer_pem
    assert devpki.load(target).cert("officer").dump() == der


def test_signing_pki_refuses_non_loopback_and_missing_dir(tmp_path: Path, capsys) -> None:
    assert main(["pki", "serve", str(tmp_path / "nothing")]) == 1
    assert "no generated PKI" in capsys.readouterr().err
    try:
        devpki.generate(tmp_path / "x", host="0.0.0.0")  # noqa: S104 - must be refused
    except devpki.PkiError as exc:
        assert "loopback" in str(exc)
    else:
        raise AssertionError("a non-loopback host was accepted")


def test_signing_pki_dev_tokens_for_the_demo(tmp_path: Path, capsys) -> None:
    import subprocess

    target = tmp_path / "pki"
    port = str(fixtures_pki.free_port())
    assert main(["pki", "dev", str(target), "--port", port, "--tokens"]) == 0
    out = capsys.readouterr().out
    store = target / "softhsm"
    for token in ("agency-hsm", "officer-usb"):
        pin_file = store / f"{token}.pin"
        assert stat.S_IMODE(pin_file.stat().st_mode) == 0o600
        assert pin_file.read_text().strip() not in out  # PINs are never printed
    slots = subprocess.run(
        ["softhsm2-util", "--show-slots"], capture_output=True, text=True, check=True,
        env={"SOFTHSM2_CONF": str(store / "softhsm2.conf"), "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    assert "agency-hsm" in slots and "officer-usb" in slots
    assert not list(store.glob("*.der"))  # temporary key files are gone
    assert main(["pki", "dev", str(target), "--port", port, "--tokens"]) == 1
    assert "already holds tokens" in capsys.readouterr().err
