"""Settings of the axis: ``conf/lienthong.toml`` plus ``LIENTHONG_<SECTION>_<KEY>`` overrides.

Order of precedence (last wins): built-in defaults, the TOML file (an explicit path, else
``conf/lienthong.toml`` relative to the working directory when it exists), environment
variables, then explicit arguments (``data_dir``). Secrets never live in this module: they come
from the environment only and are never logged.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("conf/lienthong.toml")
ENV_PREFIX = "LIENTHONG_"


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line naming the setting."""


@dataclass(frozen=True)
class ServerSettings:
    """[server]: where the axis listens and who it is."""

    host: str = "127.0.0.1"
    port: int = 8080
    # Largest accepted request body (an edXML package with its base64 attachments).
    max_body_bytes: int = 200 * 1024 * 1024
    # The URL agencies use to reach this axis (shown on the home page); None: derived from host.
    public_url: str | None = None
    # The axis's own organisation id, written in the TraceHeader it appends to every package.
    axis_id: str = "000.00.00.LT0"
    # Structured (JSON lines) logging; plain text when false (handy on a terminal).
    log_json: bool = True
    # Server processes sharing the listening socket (`lienthong serve --workers N`); background
    # jobs (anchoring, directory sync, start-up sweep) run once, see server/app/workers.py.
    workers: int = 1
    # Hostile or broken clients (docs/operations.md, "Connections"; server/app/connections.py),
    # in seconds: a connection gets ``keepalive_timeout`` to send a complete request head after
    # it opens or after its last answer; once a head has begun it must end within
    # ``header_timeout``; a request body awaited with no byte arriving for ``body_idle_timeout``
    # is answered 408 and the connection closed.
    header_timeout: int = 20
    keepalive_timeout: int = 30
    body_idle_timeout: int = 30
    # Open connections one client address may hold (a process of `--workers N` holds its share);
    # over it a new connection gets 503 and is closed. 0: no cap (behind a reverse proxy, where
    # every client has the proxy's address, the proxy must limit per client instead).
    max_connections_per_address: int = 128
    # The event loop that serves (server/app/eventloop.py): "asyncio" (the standard library's,
    # the default), "uvloop" (the optional `speed` extra) or "auto" (uvloop when installed).
    event_loop: str = "asyncio"


@dataclass(frozen=True)
class TlsSettings:
    """[server.tls]: HTTPS served by the axis itself (server/runtime/tls.py,
    docs/operations.md "TLS and client certificates"). No ``certificate``: plain HTTP (behind a
    reverse proxy that terminates TLS).

    ``certificate``: PEM, the server certificate followed by its intermediates; ``key``: its
    PEM private key, encrypted or not: the password comes only from
    LIENTHONG_SERVER_TLS_KEY_PASSWORD or ``key_password_file``. ``client_ca``: PEM of the CAs
    whose client certificates are accepted (agency systems, other axes), asked for on every
    connection; ``client_certificates``: ``optional`` (a client may present one, or use a
    bearer token) or ``require`` (no connection without a trusted certificate).
    """

    certificate: Path | None = None
    key: Path | None = None
    key_password_file: Path | None = None
    client_ca: Path | None = None
    client_certificates: str = "optional"


@dataclass(frozen=True)
class StorageSettings:
    """[storage]: where metadata and objects live (SQLite + filesystem by default)."""

    data_dir: Path = Path("./data")
    # Where package bytes live: "fs" (data_dir/objects) or "s3" (the bucket of the [s3] section).
    backend: str = "fs"
    # Objects up to this size are kept in the database, written with the row that names them
    # (storage/objects/inline.py, docs/storage.md); 0: every object in the backend.
    inline_max_bytes: int = 256 * 1024


@dataclass(frozen=True)
class DatabaseSettings:
    """[database]: the metadata database (docs/operations.md "The database"). No ``url``: SQLite
    at ``data_dir/lienthong.sqlite3`` (the default, one machine). ``url =
    "postgresql://user@host:port/name"``: PostgreSQL (several nodes, issue 20); its password
    comes only from LIENTHONG_DATABASE_PASSWORD or ``password_file``, never from this file.
    ``pool_size``: connections each server process keeps to PostgreSQL at most."""

    url: str | None = None
    password_file: Path | None = None
    pool_size: int = 10

    @property
    def postgresql(self) -> bool:
        """Whether the metadata live in PostgreSQL."""
        return self.url is not None


@dataclass(frozen=True)
class S3Section:
    """[s3]: the bucket used when storage.backend = "s3" (see docs/storage.md).

    The access key and secret are not settings: they come from LIENTHONG_S3_ACCESS_KEY /
    LIENTHONG_S3_SECRET_KEY or from the files named here, and are never logged.
    """

    endpoint: str | None = None  # host:port or http(s)://host:port
    bucket: str = "lienthong"
    region: str = "us-east-1"
    secure: bool = True
    retention_years: int = 10  # COMPLIANCE Object Lock on every object; 0 = none
    prefix: str = "objects/"
    part_size: int = 16 * 1024 * 1024
    parallel_parts: int = 2  # parts of one upload in flight at once; RAM about this * part_size
    access_key_file: Path | None = None
    secret_key_file: Path | None = None


@dataclass(frozen=True)
class TsaSettings:
    """[tsa]: the RFC 3161 time-stamping authority (receipts, audit anchors); None: no TSA."""

    url: str | None = None
    timeout: int = 10  # seconds


@dataclass(frozen=True)
class SealSettings:
    """[seal]: the axis seal key that signs receipts (docs/audit.md). None configured: no
    receipts. A PKCS#12 file (development) or a key on a PKCS#11 token; the PIN/passphrase
    come only from LIENTHONG_SEAL_PIN / LIENTHONG_SEAL_PASSPHRASE or ``pin_file``."""

    pkcs12: Path | None = None
    pkcs11_module: Path | None = None
    token_label: str | None = None
    key_label: str = "seal"
    pin_file: Path | None = None
    chain: Path | None = None  # PEM file of intermediate certificates embedded in receipts


@dataclass(frozen=True)
class AuditSettings:
    """[audit]: how often the audit chain head is timestamped (0: only at shutdown)."""

    anchor_minutes: int = 10


@dataclass(frozen=True)
class DeliverySettings:
    """[delivery]: the push worker (webhooks, other axes); see docs/delivery.md."""

    enabled: bool = True  # run the worker in this server process
    concurrency: int = 8  # pushes in flight at once
    base_delay_ms: int = 2000  # first retry delay; doubled each attempt, with jitter
    max_delay: int = 3600  # seconds: the longest wait between two attempts
    max_age: int = 3 * 24 * 3600  # seconds of failed attempts before the dead-letter state
    timeout: int = 60  # seconds for one push request
    lease: int = 300  # seconds a worker holds a delivery (longer than timeout)
    poll_ms: int = 1000  # how often the queue is checked when nothing woke the worker
    orphan_grace: int = 3600  # seconds before an unfinished send's object is swept
    # networks a webhook may reach although loopback or link-local (server/exchange/webhooks.py)
    webhook_allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class FederationSettings:
    """[federation]: which organisation ids this axis hosts, and its parent axis.

    ``hosted`` patterns: an id (that id and every id under it, by OrganId.parent) or a glob
    (``*.H41``). Empty: every agency in the directory is local and nothing goes to the parent.
    The parent token comes from LIENTHONG_FEDERATION_PARENT_TOKEN or ``parent_token_file``.
    """

    hosted: tuple[str, ...] = ()
    parent_url: str | None = None
    parent_id: str | None = None  # the parent axis's own id (its TraceHeader and account here)
    parent_token_file: Path | None = None
    sync_interval: int = 600  # seconds between directory syncs from the parent (0: start only)
    # mTLS towards the parent and linked axes (server/runtime/tls.py): the client certificate
    # (PEM, with its intermediates) and key presented on every forward and directory sync, its
    # password from LIENTHONG_FEDERATION_CLIENT_KEY_PASSWORD only; ``server_ca``: the CAs their
    # server certificates must chain to (default: the system's trust store).
    client_certificate: Path | None = None
    client_key: Path | None = None
    server_ca: Path | None = None


@dataclass(frozen=True)
class VdxpSettings:
    """[vdxp]: the national axis protocol at /vdxp (docs/vdxp.md "Replayed requests").

    ``timestamp_window``: seconds a request's signed ``timestamp`` may be away from the axis's
    clock (either way); farther: refused (ErrorCode 1008). A signed registerAgency or
    deleteAgency seen again within the window is refused (ErrorCode 1009). 0 turns both checks
    off. The SDK takes its timestamp once per client object, so the window must outlast the
    agency software's client objects (a day).
    """

    timestamp_window: int = 24 * 3600


@dataclass(frozen=True)
class SigningSettings:
    """[signing]: officers' signing sessions and agency seals on the axis (docs/signing.md).

    Officers' certificates must chain to the trust roots (``certs/trust`` or ``trust_dir``) and
    are checked online (OCSP/CRL, hard-fail). Agency seal keys live on one PKCS#11 module:
    ``seal_keys`` entries ``ORGANID=TOKEN_LABEL/KEY_LABEL``; each token's PIN is the file
    ``seal_pin_dir/TOKEN_LABEL.pin``, else LIENTHONG_SIGNING_SEAL_PIN; never logged.
    """

    trust_dir: Path | None = None
    chain: Path | None = None  # PEM of intermediate CAs (the government CA) to embed
    session_minutes: int = 15
    seal_module: Path | None = None
    seal_keys: tuple[str, ...] = ()
    seal_pin_dir: Path | None = None
    seal_level: str = "B-B"


@dataclass(frozen=True)
class DevPkiSettings:
    """[devpki]: DEVELOPMENT ONLY, written by ``lienthong demo``; never set it in production.

    ``dir``: a test PKI made by ``lienthong pki dev DIR --tokens`` (certs/pki.yml). When set,
    ``lienthong serve`` also serves that PKI's OCSP, CRL and TSA on loopback (on the port baked
    into its certificates), trusts its test root (verification page, signing sessions) and
    points ``SOFTHSM2_CONF`` at its SoftHSM2 tokens (``DIR/softhsm``), so that the demo's seal
    and TSA work with one command. ``serve = false`` keeps the rest but runs no services (e.g.
    when ``lienthong pki serve DIR`` runs apart).
    """

    dir: Path | None = None
    serve: bool = True


@dataclass(frozen=True)
class VerificationSettings:
    """[verification]: signature verification (docs/verification.md).

    ``workers``: isolated verifier processes; ``public_max_bytes`` / ``public_slots``: the
    public upload of ``/xac-minh`` (largest PDF, public uploads verified at once once their
    body has arrived, beyond which 503 with ``Retry-After: retry_after`` seconds);
    ``upload_slots``: uploads of either verify route in progress at once (received to the
    spool, then verified); ``upload_max_bytes``: the agencies' ``POST /api/v1/verify``;
    ``online``: fetch OCSP/CRL (LIENTHONG_VERIFY_ONLINE=0 also turns it off);
    ``refresh_min_interval``: seconds after a stored report during which
    ``?refresh=1`` answers a new report without storing it (stored reports are locked for
    years on S3, so a loop of refreshes must not pile them up); ``fetch_allow``: networks
    (``10.1.2.3``, ``10.0.0.0/8``) the verifier may fetch OCSP/CRL from although they are
    loopback, link-local or private (none by default: a PDF anyone uploads names those URLs;
    signing/netguard.py). CA-issuers URLs are never followed by the server.
    """

    workers: int = 2
    public_max_bytes: int = 50 * 1024 * 1024
    public_slots: int = 4
    # Verify uploads (either route) in progress at once, receiving included (503 beyond).
    upload_slots: int = 16
    retry_after: int = 5
    upload_max_bytes: int = 50 * 1024 * 1024
    online: bool = True
    refresh_min_interval: int = 3600
    fetch_allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArchiveSettings:
    """[archive]: long-term validation upkeep of signed originals (docs/archive.md).

    ``renew_within_days``: renew (B-LTA document timestamp, as a new version) every signed PDF
    attachment whose evidence expires within this many days; ``renew_interval_hours``: how
    often the server runs that renewal itself (0: never; ``lienthong archive renew`` then).
    """

    renew_within_days: int = 365
    renew_interval_hours: int = 0


@dataclass(frozen=True)
class MetricsSettings:
    """[metrics]: Prometheus metrics at ``/metrics`` (server/runtime/metrics.py,
    docs/operations.md).

    ``public`` false: only a bearer token with the admin role may scrape (the figures leak
    volumes, never contents); true: anyone who reaches the port may.
    """

    enabled: bool = True
    public: bool = False


@dataclass(frozen=True)
class DossierSettings:
    """[dossiers]: the working hours that due dates count (server/calendar/, docs/dossiers.md).

    ``working_hours``: the day's working periods, ``HH:MM-HH:MM``, in order and apart
    (LIENTHONG_DOSSIERS_WORKING_HOURS="07:00-11:30,13:30-17:00"); their total is one working
    day (8 hours by default). ``timezone``: the IANA zone the hours are read in.
    ``max_file_bytes``: the largest file of a dossier an intake or a move takes.
    ``lookup_per_minute``: public lookups (``/tra-cuu``) a client address may make a minute, in
    bursts of as many; with ``serve --workers N`` each worker allows its share (1/N).
    """

    working_hours: tuple[str, ...] = ("07:00-11:30", "13:30-17:00")
    timezone: str = "Asia/Ho_Chi_Minh"
    max_file_bytes: int = 50 * 1024 * 1024
    lookup_per_minute: int = 30

    def periods(self) -> tuple[tuple[int, int], ...]:
        """The working periods as (start, end) minutes after midnight; ConfigError if unusable."""
        return parse_working_hours(self.working_hours)


@dataclass(frozen=True)
class FeedbackSettings:
    """[feedback]: citizen feedback (phản ánh, kiến nghị; server/feedback/, docs/feedback.md).

    ``receiving_unit``: the organ id that receives anonymous feedback and classifies it (the
    province's office); empty: each category's responsible agency receives its own.
    ``submit_per_minute``: anonymous submissions a client address may make a minute, in bursts
    of as many (officers with a token are not counted); with ``serve --workers N`` each worker
    allows its share. ``lookup_per_minute``: private-link reads and ratings per address.
    ``max_photo_bytes``/``max_photo_pixels``: the largest photo taken (bytes as sent; width
    times height, larger is refused as a decompression bomb). ``code_prefix``: the letters of
    the feedback codes (``PA-YYMMDD-NNNN``). ``jurisdiction_id``: the Open311 jurisdiction.
    """

    receiving_unit: str = ""
    submit_per_minute: int = 10
    lookup_per_minute: int = 30
    max_photo_bytes: int = 10 * 1024 * 1024
    max_photo_pixels: int = 40_000_000
    code_prefix: str = "PA"
    jurisdiction_id: str = ""


@dataclass(frozen=True)
class DvcqgSettings:
    """[dvcqg]: pushing dossiers to the National Public Service Portal through an adapter
    (server/dossiers/dvcqg.py, docs/dossiers.md "DVCQG sync"). No ``url``: the sync is off.

    The adapter's bearer token comes only from LIENTHONG_DVCQG_TOKEN or ``token_file``, and is
    never logged. ``unit_code``: ``madonvi`` of every call (default: the receiving unit's organ
    id). A dossier that fails ``max_attempts`` times in a row goes to the dead-letter list; the
    wait before attempt n+1 is ``base_delay`` * 2**(n-1) seconds, at most ``max_delay``.
    """

    url: str | None = None
    token_file: Path | None = None
    unit_code: str | None = None
    interval: int = 60  # seconds between two passes
    batch: int = 100  # dossiers per pass at most
    timeout: int = 30  # seconds for one request
    base_delay: int = 60
    max_delay: int = 6 * 3600
    max_attempts: int = 8


def parse_working_hours(values: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """``("07:00-11:30", ...)`` -> ``((420, 690), ...)``: periods in order, apart, non-empty,
    within one day (24:00 allowed as an end); ConfigError naming dossiers.working_hours."""
    periods: list[tuple[int, int]] = []
    for value in values:
        try:
            start_text, end_text = value.split("-")
            start, end = _minute_of_day(start_text), _minute_of_day(end_text)
        except ValueError:
            raise ConfigError(
                f"setting dossiers.working_hours: {value!r} is not HH:MM-HH:MM"
            ) from None
        if end <= start or (periods and start <= periods[-1][1]):
            raise ConfigError(
                f"setting dossiers.working_hours: {value!r} must end after it starts and start "
                "after the period before it ends"
            )
        periods.append((start, end))
    if not periods:
        raise ConfigError("setting dossiers.working_hours: at least one period is needed")
    return tuple(periods)


def _minute_of_day(text: str) -> int:
    hours, minutes = text.strip().split(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(text)
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError(text)
    return value


@dataclass(frozen=True)
class JobsSettings:
    """[jobs]: the jobs that run on one process at a time among all those sharing the database
    (server/runtime/leases.py, docs/scaling.md). ``lease_seconds``: how long a lease lasts
    unrenewed; its holder renews it every third of that, and another process takes a dead
    holder's jobs over within about ``lease_seconds`` and a third."""

    lease_seconds: int = 15


@dataclass(frozen=True)
class Open311Settings:
    """[open311]: Open311 GeoReport v2 at ``/open311/v2/`` (server/http/open311.py,
    docs/open311.md).

    The jurisdiction is ``[feedback] jurisdiction_id``. ``posts_per_minute``: service requests
    one API key may post a minute, in bursts of as many (an app posts for many citizens from one
    address, so the limit is per key, not per address); with ``serve --workers N`` each worker
    allows its share. ``contact`` and ``key_service``:
    the discovery document's words on whom to ask and how to get a key.
    """

    posts_per_minute: int = 60
    contact: str = "Liên hệ quản trị trục liên thông / contact the axis administrators"
    key_service: str = (
        "Xin khóa API tại cơ quan quản trị; họ cấp bằng `lienthong open311 key create --name APP`"
        " / ask the administrators for an API key"
    )


@dataclass(frozen=True)
class Config:
    """The whole configuration of one axis instance (immutable once loaded)."""

    server: ServerSettings = field(default_factory=ServerSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)  # [server.tls]
    storage: StorageSettings = field(default_factory=StorageSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    s3: S3Section = field(default_factory=S3Section)
    tsa: TsaSettings = field(default_factory=TsaSettings)
    seal: SealSettings = field(default_factory=SealSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    devpki: DevPkiSettings = field(default_factory=DevPkiSettings)
    verification: VerificationSettings = field(default_factory=VerificationSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    dossiers: DossierSettings = field(default_factory=DossierSettings)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    dvcqg: DvcqgSettings = field(default_factory=DvcqgSettings)
    vdxp: VdxpSettings = field(default_factory=VdxpSettings)
    open311: Open311Settings = field(default_factory=Open311Settings)
    jobs: JobsSettings = field(default_factory=JobsSettings)

    @property
    def db_path(self) -> Path:
        """The SQLite metadata database (when [database] names no PostgreSQL url)."""
        return self.storage.data_dir / "lienthong.sqlite3"

    @property
    def objects_dir(self) -> Path:
        """Root of the content-addressed filesystem object store."""
        return self.storage.data_dir / "objects"

    @property
    def spool_dir(self) -> Path:
        """Where request bodies land while being received (same filesystem as the objects)."""
        return self.storage.data_dir / "spool"

    @property
    def base_url(self) -> str:
        """The public base URL of the axis, without a trailing slash."""
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        scheme = "https" if self.tls.certificate else "http"
        return f"{scheme}://{self.server.host}:{self.server.port}"


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    # the table [server.tls] (LIENTHONG_SERVER_TLS_<KEY>), read as a section of its own
    "server.tls": TlsSettings,
    "storage": StorageSettings,
    "database": DatabaseSettings,
    "s3": S3Section,
    "tsa": TsaSettings,
    "seal": SealSettings,
    "audit": AuditSettings,
    "delivery": DeliverySettings,
    "federation": FederationSettings,
    "signing": SigningSettings,
    "devpki": DevPkiSettings,
    "verification": VerificationSettings,
    "archive": ArchiveSettings,
    "metrics": MetricsSettings,
    "dossiers": DossierSettings,
    "feedback": FeedbackSettings,
    "dvcqg": DvcqgSettings,
    "vdxp": VdxpSettings,
    "open311": Open311Settings,
    "jobs": JobsSettings,
}


def _field_types(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """The concrete type of a field and whether it accepts None (``X | None``)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _convert(section: str, key: str, tp: Any, value: Any, *, from_env: bool) -> Any:
    """Turn a TOML or environment value into the field's type, or raise ConfigError."""
    base, optional = _base_type(tp)
    name = f"{section}.{key}"
    if optional and (value is None or (from_env and value == "")):
        return None
    try:
        if typing.get_origin(base) is tuple:  # tuple[str, ...]: a TOML list, or "a,b" in env
            items = value.split(",") if from_env and isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ValueError
            return tuple(i.strip() for i in items if i.strip())
        if base is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str):
                low = value.strip().lower()
                if low in {"1", "true", "yes", "on"}:
                    return True
                if low in {"0", "false", "no", "off"}:
                    return False
            raise ValueError
        if base is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                result = value
            elif isinstance(value, str):
                result = int(value.strip().replace("_", ""))
            else:
                raise ValueError
            if result < 0:
                raise ValueError
            return result
        if base is Path:
            if not isinstance(value, str | Path) or str(value) == "":
                raise ValueError
            return Path(value)
        if base is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except ValueError:
        raise ConfigError(f"setting {name}: {value!r} is not a valid {base.__name__}") from None
    raise ConfigError(f"setting {name}: unsupported type")  # pragma: no cover


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    data_dir: Path | None = None,
) -> Config:
    """Load the configuration; raise :class:`ConfigError` (one line) for any unusable value.

    Unknown sections or keys in the file are refused (a typo must not be silently ignored);
    unknown ``LIENTHONG_*`` variables are ignored because other tools (the CLI client's
    ``LIENTHONG_SERVER`` / ``LIENTHONG_TOKEN``) share the prefix.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_toml(path)
    elif DEFAULT_CONFIG_PATH.is_file():
        raw = _read_toml(DEFAULT_CONFIG_PATH)

    values: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    raw = _nested_tables(raw)
    for section, content in raw.items():
        if section not in _SECTIONS:
            raise ConfigError(f"unknown config section [{section}]")
        if not isinstance(content, dict):
            raise ConfigError(f"config section [{section}] must be a table")
        hints = _field_types(_SECTIONS[section])
        for key, value in content.items():
            if key not in hints:
                raise ConfigError(f"unknown setting {section}.{key}")
            values[section][key] = _convert(section, key, hints[key], value, from_env=False)

    for section, cls in _SECTIONS.items():
        hints = _field_types(cls)
        for key, tp in hints.items():
            var = f"{ENV_PREFIX}{section.upper().replace('.', '_')}_{key.upper()}"
            if var in env:
                values[section][key] = _convert(section, key, tp, env[var], from_env=True)

    if data_dir is not None:
        values["storage"]["data_dir"] = Path(data_dir)

    server = ServerSettings(**values["server"])
    if not 0 <= server.port <= 65535:
        raise ConfigError(f"setting server.port: {server.port} is not a TCP port")
    if server.max_body_bytes < 1024:
        raise ConfigError("setting server.max_body_bytes: must be at least 1024")
    if not 1 <= server.workers <= 64:
        raise ConfigError(f"setting server.workers: {server.workers} is not between 1 and 64")
    for key in ("header_timeout", "keepalive_timeout", "body_idle_timeout"):
        if getattr(server, key) < 1:
            raise ConfigError(f"setting server.{key}: must be at least 1 (seconds)")
    if server.event_loop not in {"auto", "uvloop", "asyncio"}:
        raise ConfigError(
            f"setting server.event_loop: {server.event_loop!r} is not 'auto', 'uvloop' or 'asyncio'"
        )
    storage = StorageSettings(**values["storage"])
    if storage.backend not in {"fs", "s3"}:
        raise ConfigError(f"setting storage.backend: {storage.backend!r} is not 'fs' or 's3'")
    if not 0 <= storage.inline_max_bytes <= 16 * 1024 * 1024:
        raise ConfigError("setting storage.inline_max_bytes: must be between 0 and 16777216")
    database = DatabaseSettings(**values["database"])
    _check_database(database)
    s3 = S3Section(**values["s3"])
    if storage.backend == "s3" and not s3.endpoint:
        raise ConfigError("setting s3.endpoint: required when storage.backend = 's3'")
    if s3.part_size < 5 * 1024 * 1024:
        raise ConfigError("setting s3.part_size: S3 needs parts of at least 5 MiB (5242880)")
    if not 1 <= s3.parallel_parts <= 16:
        raise ConfigError("setting s3.parallel_parts: must be 1 to 16")
    verification = VerificationSettings(**values["verification"])
    for key in ("workers", "public_max_bytes", "public_slots", "upload_slots", "upload_max_bytes"):
        if getattr(verification, key) < 1:
            raise ConfigError(f"setting verification.{key}: must be at least 1")
    if verification.retry_after < 1 or verification.refresh_min_interval < 0:
        raise ConfigError("settings verification.retry_after (>= 1), refresh_min_interval (>= 0)")
    for name, networks in (
        ("verification.fetch_allow", verification.fetch_allow),
        ("delivery.webhook_allow", values["delivery"].get("webhook_allow", ())),
    ):
        try:
            for network in networks:
                ipaddress.ip_network(network.strip(), strict=False)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"setting {name}: {exc}") from None
    dossiers = DossierSettings(**values["dossiers"])
    dossiers.periods()
    if dossiers.max_file_bytes < 1:
        raise ConfigError("setting dossiers.max_file_bytes: must be at least 1")
    if dossiers.lookup_per_minute < 1:
        raise ConfigError("setting dossiers.lookup_per_minute: must be at least 1")
    try:
        zoneinfo.ZoneInfo(dossiers.timezone)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        raise ConfigError(
            f"setting dossiers.timezone: {dossiers.timezone!r} is not a known time zone"
        ) from None
    feedback = FeedbackSettings(**values["feedback"])
    for key in ("submit_per_minute", "lookup_per_minute", "max_photo_bytes", "max_photo_pixels"):
        if getattr(feedback, key) < 1:
            raise ConfigError(f"setting feedback.{key}: must be at least 1")
    if not re.fullmatch(r"[A-Z]{1,8}", feedback.code_prefix):
        raise ConfigError("setting feedback.code_prefix: must be 1 to 8 capital letters")
    dvcqg = DvcqgSettings(**values["dvcqg"])
    if dvcqg.url is not None and not dvcqg.url.startswith(("http://", "https://")):
        raise ConfigError(f"setting dvcqg.url: {dvcqg.url!r} is not an http(s) URL")
    for key in ("interval", "batch", "timeout", "max_attempts"):
        if getattr(dvcqg, key) < 1:
            raise ConfigError(f"setting dvcqg.{key}: must be at least 1")
    if dvcqg.max_delay < dvcqg.base_delay:
        raise ConfigError("setting dvcqg.max_delay: must not be less than dvcqg.base_delay")
    tls = TlsSettings(**values["server.tls"])
    _check_tls(tls)
    vdxp = VdxpSettings(**values["vdxp"])
    open311 = Open311Settings(**values["open311"])
    if open311.posts_per_minute < 1:
        raise ConfigError("setting open311.posts_per_minute: must be at least 1")
    jobs = JobsSettings(**values["jobs"])
    if not 3 <= jobs.lease_seconds <= 3600:
        raise ConfigError("setting jobs.lease_seconds: must be between 3 and 3600 (seconds)")
    return Config(
        server=server,
        tls=tls,
        storage=storage,
        database=database,
        s3=s3,
        tsa=TsaSettings(**values["tsa"]),
        seal=SealSettings(**values["seal"]),
        audit=AuditSettings(**values["audit"]),
        delivery=DeliverySettings(**values["delivery"]),
        federation=FederationSettings(**values["federation"]),
        signing=SigningSettings(**values["signing"]),
        devpki=DevPkiSettings(**values["devpki"]),
        verification=verification,
        archive=ArchiveSettings(**values["archive"]),
        metrics=MetricsSettings(**values["metrics"]),
        dossiers=dossiers,
        feedback=feedback,
        dvcqg=dvcqg,
        vdxp=vdxp,
        open311=open311,
        jobs=jobs,
    )


def _check_database(database: DatabaseSettings) -> None:
    if database.url is not None:
        parts = urllib.parse.urlsplit(database.url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ConfigError(
                "setting database.url: must be postgresql://user@host:port/name "
                "(no url: SQLite in the data directory)"
            )
        if parts.password:
            raise ConfigError(
                "setting database.url: the password must not be in the url; give it in "
                "LIENTHONG_DATABASE_PASSWORD or database.password_file"
            )
    if not 1 <= database.pool_size <= 200:
        raise ConfigError("setting database.pool_size: must be between 1 and 200")


def database_password(database: DatabaseSettings) -> str | None:
    """The PostgreSQL password: LIENTHONG_DATABASE_PASSWORD, else database.password_file."""
    return optional_secret(
        "LIENTHONG_DATABASE_PASSWORD", database.password_file, "database.password_file"
    )


def _nested_tables(raw: dict[str, Any]) -> dict[str, Any]:
    """``[server.tls]`` arrives as ``raw["server"]["tls"]``: read it as the section
    ``server.tls`` of its own, so the [server] keys stay flat."""
    server = raw.get("server")
    if not isinstance(server, dict) or "tls" not in server:
        return raw
    nested = dict(raw)
    nested["server"] = {k: v for k, v in server.items() if k != "tls"}
    nested["server.tls"] = server["tls"]
    return nested


def _check_tls(tls: TlsSettings) -> None:
    if tls.client_certificates not in {"optional", "require"}:
        raise ConfigError(
            "setting server.tls.client_certificates: "
            f"{tls.client_certificates!r} is not 'optional' or 'require'"
        )
    if (tls.certificate is None) != (tls.key is None):
        raise ConfigError("settings server.tls.certificate and server.tls.key go together")
    if tls.client_ca is not None and tls.certificate is None:
        raise ConfigError("setting server.tls.client_ca: needs server.tls.certificate and key")


def optional_secret(
    var: str, file: Path | None, setting: str, env: Mapping[str, str] = os.environ
) -> str | None:
    """A secret from the environment variable ``var``, else from ``file`` (the setting named
    ``setting``); None when neither is given. Never logged, never part of a :class:`Config`."""
    value = env.get(var)
    if value:
        return value.strip()
    if file is None:
        return None
    try:
        return file.read_text("utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"setting {setting}: cannot read it ({exc.strerror})") from None


def with_overrides(config: Config, **server: Any) -> Config:
    """A copy of ``config`` with some [server] settings replaced (e.g. ``--host``/``--port``)."""
    return dataclasses.replace(
        config,
        server=dataclasses.replace(
            config.server, **{k: v for k, v in server.items() if v is not None}
        ),
    )
