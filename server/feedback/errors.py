"""The citizen feedback domain's refusals, each with the problem type an HTTP answer gives it.

``detail`` is a plain-words sentence; ``field`` (in the problem document) names the field.
"""

from __future__ import annotations

from server.runtime.problems import BAD_REQUEST, NOT_FOUND, DomainError, problem_type

INVALID_CATEGORY = problem_type(
    "invalid-category",
    422,
    "Invalid feedback category",
    "A feedback category (an Open311 service) breaks a rule: its code, type, agency or an "
    "attribute of its service definition; `field` names the field.",
)
INVALID_FEEDBACK = problem_type(
    "invalid-feedback",
    422,
    "Invalid feedback",
    "A feedback intake, move or rating breaks a rule (unknown category, bad coordinates, "
    "missing contact, text too long, a photo that is not an image...); `field` names the "
    "field. Nothing was stored.",
)
FEEDBACK_MOVE_REFUSED = problem_type(
    "feedback-move-refused",
    409,
    "Feedback move not allowed from this status",
    "The feedback cannot move to this status from its current one (or its one supplement "
    "request was used, or it was rated already); `allowed` lists the statuses it may move to.",
)
FEEDBACK_MOVE_NOT_PERMITTED = problem_type(
    "feedback-move-not-permitted",
    403,
    "Feedback move not permitted to this agency",
    "This move is the other party's (the receiving unit or the competent agency); `allowed` "
    "lists the statuses this agency may move it to.",
)
TOO_MANY_FEEDBACK = problem_type(
    "too-many-feedback",
    429,
    "Too many feedback requests",
    "This client address sent or read too much feedback in a short time (`[feedback] "
    "submit_per_minute`, `lookup_per_minute`); retry after `Retry-After` seconds.",
)


class FeedbackError(DomainError):
    """Base of every refusal of the citizen feedback domain."""

    problem = BAD_REQUEST


class _FieldError(FeedbackError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field {field}: {message}", field=field)
        self.field = field


class InvalidCategory(_FieldError):
    """A category (typed in, or its attributes file) breaks a rule."""

    problem = INVALID_CATEGORY


class InvalidFeedback(_FieldError):
    """An intake, a move or a rating breaks a rule; ``field`` names the field."""

    problem = INVALID_FEEDBACK


class FeedbackNotFound(FeedbackError):
    """No such feedback (or category), or one the caller neither received nor must answer;
    a private link with a wrong token is not found either."""

    problem = NOT_FOUND


class MoveRefused(FeedbackError):
    """A move the lifecycle does not allow now (``allowed``: the moves from this status)."""

    problem = FEEDBACK_MOVE_REFUSED

    def __init__(self, detail: str, allowed: list[str]) -> None:
        super().__init__(detail, allowed=allowed)


class MoveNotPermitted(FeedbackError):
    """A legal move that is the other party's (``allowed``: the caller's moves)."""

    problem = FEEDBACK_MOVE_NOT_PERMITTED

    def __init__(self, detail: str, allowed: list[str]) -> None:
        super().__init__(detail, allowed=allowed)


class TooManyRequests(FeedbackError):
    """A client address over its budget; retry after ``retry_after`` seconds."""

    problem = TOO_MANY_FEEDBACK

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many requests from this address; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )
