"""PKCS#11 tokens (HSMs and officers' USB tokens) with one long-lived session each.

Why a dedicated thread: python-pkcs11 initialises a module so that SoftHSM2 (and many vendor
modules) turn their internal locking off, and pyHanko runs ``C_Sign`` on the default executor.
Two threads calling one module crashed the process in our measurements (SIGNING-NOTES.md, trap
3). So every call into one PKCS#11 module, from opening the session to ``C_Sign``, runs on that
module's single worker thread; to scale, use more processes.

The PIN is a :class:`Pin`, whose ``repr`` and ``str`` never show it; it is handed to the module
once, at login, and not kept.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import x509
from pyhanko.sign.pkcs11 import PKCS11Signer, select_pkcs11_signing_params

from signing.errors import KeyNotFoundError, PinError, TokenError

T = TypeVar("T")

PIN_ENV = "LIENTHONG_PIN"
SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


class Pin:
    """A token PIN. It is never printed: ``repr(pin)`` is ``Pin('***')``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise PinError("the PIN is empty")
        self._value = value

    def reveal(self) -> str:
        """The PIN itself, for the one call that logs in to the token."""
        return self._value

    def __repr__(self) -> str:
        return "Pin('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Pin is not picklable")

    @classmethod
    def from_env(cls, variable: str = PIN_ENV) -> Pin:
        """The PIN from environment variable ``variable`` (``LIENTHONG_PIN`` by default)."""
        value = os.environ.get(variable)
        if not value:
            raise PinError(f"environment variable {variable} is not set")
        return cls(value)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Pin:
        """The PIN from the first line of a file (e.g. a Docker/systemd secret)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PinError(f"cannot read the PIN file {path}: {exc.strerror}") from exc
        lines = text.splitlines()
        return cls(lines[0].strip() if lines else "")

    @classmethod
    def prompt(cls, label: str) -> Pin:
        """Ask for the PIN on the terminal without echo."""
        return cls(getpass.getpass(f"PIN for token {label!r}: "))

    @classmethod
    def resolve(
        cls, *, pin_file: str | None = None, label: str = "", interactive: bool = True
    ) -> Pin:
        """The PIN from ``pin_file`` if given, else ``LIENTHONG_PIN``, else a prompt."""
        if pin_file:
            return cls.from_file(pin_file)
        if os.environ.get(PIN_ENV):
            return cls.from_env()
        if interactive:
            return cls.prompt(label)
        raise PinError(f"no PIN: set {PIN_ENV} or give a PIN file")


class _ModuleWorker:
    """A loaded PKCS#11 module and the only thread allowed to call into it."""

    def __init__(self, path: str) -> None:
        import pkcs11

        self.path = path
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pkcs11")
        # The executor's one thread, so that a call made on it runs inline (not queued behind
        # itself); compared by identity, since every module's thread has the same name prefix.
        self.thread_id = self.executor.submit(threading.get_ident).result()
        try:
            self.lib = self.executor.submit(pkcs11.lib, path).result()
        except (RuntimeError, OSError, pkcs11.exceptions.PKCS11Error) as exc:
            self.executor.shutdown(wait=False)
            raise TokenError(f"cannot load the PKCS#11 module {path}: {exc}") from exc

    def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on this module's thread (inline when already on it) and return its result."""
        if threading.get_ident() == self.thread_id:
            return fn()
        return self.executor.submit(fn).result()


# A PKCS#11 module may be initialised once per process (C_Initialize), so loaded modules are a
# process-wide registry by nature, not application state.
_WORKERS: dict[str, _ModuleWorker] = {}
_WORKERS_LOCK = threading.Lock()
_OPEN_TOKENS: dict[tuple[str, bytes], Token] = {}
_OPEN_LOCK = threading.Lock()


def _worker(module: str) -> _ModuleWorker:
    path = str(Path(module).resolve())
    with _WORKERS_LOCK:
        worker = _WORKERS.get(path)
        if worker is None:
            if not Path(path).is_file():
                raise TokenError(f"no PKCS#11 module at {module}")
            worker = _WORKERS[path] = _ModuleWorker(path)
        return worker


def _map_pkcs11_error(exc: Exception, what: str) -> TokenError:
    import pkcs11.exceptions as p11e

    if isinstance(exc, p11e.PinIncorrect):
        return PinError(f"wrong PIN for {what}")
    if isinstance(exc, p11e.PinLocked):
        return PinError(f"the PIN of {what} is locked")
    if isinstance(exc, (p11e.PinExpired, p11e.PinInvalid, p11e.PinLenRange)):
        return PinError(f"the PIN of {what} is not accepted ({type(exc).__name__})")
    if isinstance(exc, (p11e.NoSuchToken, p11e.TokenNotPresent, p11e.TokenNotRecognised)):
        return TokenError(f"no token {what}")
    return TokenError(f"PKCS#11 error on {what}: {type(exc).__name__} {exc}".strip())


def _pin_digest(pin: Pin, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin.reveal().encode(), salt, 20_000)


class Token:
    """One logged-in session on one token, used from its module's dedicated thread.

    Open it once per process and token (a second login fails with ``UserAlreadyLoggedIn``) and
    make as many signers from it as needed.
    """

    def __init__(self, worker: _ModuleWorker, session: Any, description: str) -> None:
        self._worker = worker
        self._session = session
        self.description = description
        # Only a salted, slow hash of the PIN is kept, to check a second open() of this token.
        self._pin_salt = secrets.token_bytes(16)
        self._pin_digest = b""

    def __repr__(self) -> str:
        return f"Token({self.description})"

    @classmethod
    def open(
        cls,
        module: str | os.PathLike[str],
        *,
        pin: Pin,
        label: str | None = None,
        serial: str | None = None,
    ) -> Token:
        """Open and log in to the token with ``label`` (or ``serial``) in PKCS#11 ``module``.

        Tokens are chosen by label or serial, never by slot number: SoftHSM2 slot ids change.
        """
        if not isinstance(pin, Pin):
            raise TypeError("pin must be a signing.tokens.Pin")
        if label is None and serial is None:
            raise TokenError("give a token label or serial")
        worker = _worker(str(module))
        what = f"label={label!r}" if label is not None else f"serial={serial!r}"

        def _find() -> Any:
            import pkcs11

            kwargs: dict[str, Any] = {}
            if label is not None:
                kwargs["token_label"] = label
            if serial is not None:
                kwargs["token_serial"] = serial.encode()
            try:
                return worker.lib.get_token(**kwargs)
            except pkcs11.exceptions.PKCS11Error as exc:
                raise _map_pkcs11_error(exc, what) from None

        p11_token = worker.run(_find)
        # Keyed by the token's own serial, whichever way it was named.
        key = (worker.path, bytes(p11_token.serial))
        with _OPEN_LOCK:
            cached = _OPEN_TOKENS.get(key)
            if cached is not None and not cached.closed:
                # PKCS#11 login is per process: a second C_Login fails with
                # UserAlreadyLoggedIn, so the open session is shared, for the same PIN only.
                if not cached._pin_matches(pin):
                    raise PinError(f"wrong PIN for {what}")
                return cached

            def _login() -> Any:
                import pkcs11

                try:
                    return p11_token.open(user_pin=pin.reveal())
                except pkcs11.exceptions.PKCS11Error as exc:
                    raise _map_pkcs11_error(exc, what) from None

            token = cls(worker, worker.run(_login), f"{Path(str(module)).name}, {what}")
            token._pin_digest = _pin_digest(pin, token._pin_salt)
            _OPEN_TOKENS[key] = token
            return token

    def _pin_matches(self, pin: Pin) -> bool:
        return hmac.compare_digest(self._pin_digest, _pin_digest(pin, self._pin_salt))

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has logged out."""
        return self._session is None

    def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on this token's module thread and return its result."""
        return self._worker.run(fn)

    async def arun(self, fn: Callable[[], T]) -> T:
        """Await ``fn`` run on this token's module thread (the event loop stays free)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker.executor, fn)

    def signer(
        self,
        key_label: str,
        *,
        certificate: x509.Certificate | None = None,
        cert_label: str | None = None,
        chain: Iterable[x509.Certificate] = (),
    ) -> TokenSigner:
        """A pyHanko signer for the private key ``key_label`` on this token.

        The certificate is ``certificate`` if given, else the one labelled ``cert_label`` (by
        default the same label as the key) read from the token. ``chain`` are the intermediate
        certificates to embed. Key and certificate are looked up now, once.
        """
        signer = TokenSigner(
            self,
            key_label=key_label,
            cert_label=cert_label or key_label,
            signing_cert=certificate,
            ca_chain=list(chain),
        )
        try:
            self.run(signer._load_objects)
        except Exception as exc:
            import pkcs11.exceptions as p11e
            from pyhanko.sign.general import SigningError as PyhankoSigningError

            if isinstance(exc, (p11e.PKCS11Error, PyhankoSigningError)):
                raise KeyNotFoundError(
                    f"no key/certificate labelled {key_label!r} on token {self.description}"
                ) from None
            raise
        return signer

    def close(self) -> None:
        """Log out and close the session."""
        session, self._session = self._session, None
        if session is not None:
            self.run(session.close)


class TokenSigner(PKCS11Signer):
    """pyHanko's PKCS#11 signer, with every token call routed to the module's own thread."""

    def __init__(self, token: Token, **kwargs: Any) -> None:
        # Roots are trust anchors the verifier already has; embedding them costs bytes.
        super().__init__(token._session, embed_roots=False, **kwargs)
        self.token = token

    def __repr__(self) -> str:
        return f"TokenSigner({self.token.description}, key={self.key_label!r})"

    async def ensure_objects_loaded(self) -> None:
        if not self._loaded:
            await self.token.arun(self._load_objects)

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if dry_run:
            return bytes(self.estimate_raw_signature_size_bytes())
        await self.ensure_objects_loaded()
        key = self._key_handle
        if key is None:
            raise KeyNotFoundError(f"no signing key {self.key_label!r} on {self.token.description}")
        spec = select_pkcs11_signing_params(
            self.get_signature_mechanism_for_digest(digest_algorithm.lower()),
            digest_algorithm.lower(),
            use_raw_mechanism=self.use_raw_mechanism,
            sign_kwargs=self.sign_kwargs(data),
        )
        payload = spec.pre_sign_transform(data) if spec.pre_sign_transform else data

        def _sign() -> bytes:
            signature = key.sign(payload, **spec.sign_kwargs)
            if spec.post_sign_transform is not None:
                signature = spec.post_sign_transform(signature)
            return bytes(signature)

        return await self.token.arun(_sign)

    def estimate_raw_signature_size_bytes(self) -> int:
        cert = self._signing_cert
        if cert is not None and cert.public_key.algorithm == "rsa":
            return int((cert.public_key.bit_size + 7) // 8)
        return int(super().estimate_raw_signature_size_bytes())
