"""The stats domain's refusals, each with the problem type an HTTP answer gives it."""

from __future__ import annotations

from server.runtime.problems import NOT_FOUND, DomainError, problem_type

INVALID_STATS_QUERY = problem_type(
    "invalid-stats-query",
    400,
    "Invalid stats query",
    "A parameter of a stats query is unusable (a date not `YYYY-MM-DD`, `from` after `to`, a "
    "period over ten years, an unknown `level`, `group_by`, `format`, `column` or `figure`, "
    "a malformed `agency`, `limit` or `after`); `parameter` names it.",
)


class StatsError(DomainError):
    """Base of every refusal of the stats domain."""

    problem = INVALID_STATS_QUERY


class InvalidStatsQuery(StatsError):
    """A query parameter is unusable; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"parameter {parameter}: {message}", parameter=parameter)
        self.parameter = parameter


class AgencyOutOfReach(StatsError):
    """The agency is not the caller's nor under it (or unknown): told apart from neither."""

    problem = NOT_FOUND

    def __init__(self, agency: str) -> None:
        super().__init__(f"no agency {agency} under the caller's")
