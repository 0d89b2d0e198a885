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
