"""The one-stop dossier domain's refusals, each with the problem type an HTTP answer gives it.

``detail`` is a plain-words sentence naming what was wrong (for a procedure: where in its file,
and which field); ``extra`` members (``field``) go into the problem document.
"""

from __future__ import annotations

from server.runtime.problems import BAD_REQUEST, NOT_FOUND, DomainError, problem_type

INVALID_PROCEDURE = problem_type(
    "invalid-procedure",
    422,
    "Invalid procedure",
    "A procedure breaks the catalogue's rules (code format, unknown agency, steps that do not "
    "add up...); `field` names the field.",
)


class DossierError(DomainError):
    """Base of every refusal of the one-stop dossier domain."""

    problem = BAD_REQUEST


class InvalidProcedure(DossierError):
    """A procedure (typed in, or a row of an imported file) breaks a rule of the catalogue.

    ``where`` says which row of a file (``row 3``, ``procedure 2``), if any; ``field`` which field.
    """

    problem = INVALID_PROCEDURE

    def __init__(self, field: str, message: str, where: str | None = None) -> None:
        place = f"{where}, " if where else ""
        super().__init__(f"{place}field {field}: {message}", field=field)
        self.field = field
        self.message = message
        self.where = where

    def at(self, where: str) -> InvalidProcedure:
        """The same refusal, located in a file (``row 3``)."""
        return InvalidProcedure(self.field, self.message, where)


class ProcedureNotFound(DossierError):
    """No procedure with this code in the catalogue."""

    problem = NOT_FOUND


class ProcedureFileError(DossierError):
    """A procedure file that cannot be read at all (not UTF-8, not CSV or JSON, no header)."""


INVALID_DOSSIER = problem_type(
    "invalid-dossier",
    422,
    "Invalid dossier",
    "A dossier intake or move breaks a rule (unknown procedure, missing required component, "
    "bad ID number or phone, a date in the future or too far back...); `field` names the field. "
    "Nothing was stored.",
)
DOSSIER_FILE_TOO_LARGE = problem_type(
    "dossier-file-too-large",
    413,
    "Dossier file too large",
    "A file of a dossier exceeds `[dossiers] max_file_bytes`; `field` names its part. Nothing "
    "was stored.",
)
ILLEGAL_MOVE = problem_type(
    "illegal-move",
    409,
    "Move not allowed from this status",
    "The dossier cannot move to this status from its current one; `allowed` lists the statuses "
    "it may move to.",
)
MOVE_NOT_PERMITTED = problem_type(
    "move-not-permitted",
    403,
    "Move not permitted to this agency",
    "This move of the dossier is the other party's (receiving unit or competent agency); "
    "`allowed` lists the statuses this agency may move it to.",
)


class InvalidDossier(DossierError):
    """A dossier intake or move breaks a rule; ``field`` names the field (or file part)."""

    problem = INVALID_DOSSIER

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field {field}: {message}", field=field)
        self.field = field


class DossierFileTooLarge(DossierError):
    """A file part over ``[dossiers] max_file_bytes``."""

    problem = DOSSIER_FILE_TOO_LARGE

    def __init__(self, field: str, limit: int) -> None:
        super().__init__(
            f"field {field}: the file is larger than the {limit} bytes this axis accepts",
            field=field,
            max_bytes=limit,
        )


class DossierNotFound(DossierError):
    """No such dossier, or one the caller neither received nor processes."""

    problem = NOT_FOUND


class _MoveRefused(DossierError):
    """A move refused with the statuses that are ``allowed`` from the current one."""

    verb = "cannot move"

    def __init__(self, current: int, wanted: int, allowed: list[int]) -> None:
        super().__init__(
            f"From status {current}, {self.verb} to {wanted}.", current=current, allowed=allowed
        )


class IllegalMove(_MoveRefused):
    """A move the lifecycle does not allow from the dossier's status (``allowed``: by anyone)."""

    problem = ILLEGAL_MOVE
    verb = "a dossier cannot move"


class MoveNotPermitted(_MoveRefused):
    """A legal move that belongs to the other party (``allowed``: the caller's moves)."""

    problem = MOVE_NOT_PERMITTED
    verb = "this agency may not move the dossier"


INVALID_DOSSIER_CODE = problem_type(
    "invalid-dossier-code",
    400,
    "Invalid dossier code",
    "The text looked up is not a dossier code (`<organ id>-YYMMDD-NNNN`, e.g. "
    "`000.00.01.H40-260105-0007`).",
)
TOO_MANY_LOOKUPS = problem_type(
    "too-many-lookups",
    429,
    "Too many lookups",
    "This address looked up too many dossiers in a short time (`[dossiers] lookup_per_minute`); "
    "retry after `Retry-After` seconds.",
)


class InvalidDossierCode(DossierError):
    """A public lookup of a text that is not a dossier code."""

    problem = INVALID_DOSSIER_CODE


class TooManyLookups(DossierError):
    """A client address over its budget of public lookups; retry after ``retry_after`` s."""

    problem = TOO_MANY_LOOKUPS

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many lookups from this address; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )


SLIP_NOT_APPLICABLE = problem_type(
    "slip-not-applicable",
    409,
    "Slip not applicable",
    "The dossier's history has nothing this slip would record (no refusal, no supplement "
    "request, no apology; a receipt before the dossier was accepted); `kind` names the slip.",
)
DOSSIER_NOT_OVERDUE = problem_type(
    "dossier-not-overdue",
    409,
    "Dossier not overdue",
    "An apology and new appointment is issued only for an overdue dossier: past its due date, "
    "not waiting for a supplement and not in a final status.",
)


class SlipNotApplicable(DossierError):
    """The dossier's history has no turn this kind of slip records (``kind=`` the slip)."""

    problem = SLIP_NOT_APPLICABLE


class DossierNotOverdue(DossierError):
    """An apology asked for a dossier that is not overdue (``due_at=`` its due date)."""

    problem = DOSSIER_NOT_OVERDUE


TRANSFER_REFUSED = problem_type(
    "transfer-refused",
    409,
    "Transfer refused",
    "The dossier cannot be transferred to this agency now: it is not received or in processing, "
    "or this step was transferred already.",
)


class TransferRefused(DossierError):
    """A transfer across agencies (một cửa liên thông) that cannot be made now."""

    problem = TRANSFER_REFUSED
