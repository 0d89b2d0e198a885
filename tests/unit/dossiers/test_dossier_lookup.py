"""The public lookup's rules without a server: the masking of names, which texts are dossier
codes, the token buckets (times passed in, nothing waits) and a worker's share of the budget."""

from __future__ import annotations

import pytest

from server.dossiers.errors import InvalidDossierCode, TooManyLookups
from server.dossiers.lookup import LookupLimiter, check_code, mask_name
from server.runtime.ratelimit import TokenBuckets


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Nguyễn Văn An", "Nguyễn V. A."),
        ("Trần Thị Ngọc Bình", "Trần T. N. B."),
        ("Lê Bình", "Lê B."),
        ("Bình", "B."),  # one word: whole it would be the name itself
        ("  Phạm   Minh  Ánh ", "Phạm M. Á."),
        ("Nguyễn Văn Ánh", "Nguyễn V. Á."),
        ("", ""),
        ("   ", ""),
        ("Công ty TNHH Hoa Sen", "Công t. T. H. S."),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_mask_name_keeps_a_decomposed_initial_whole() -> None:
    decomposed = "Nguye\u0302\u0303n Va\u0306n A\u0301nh"
    assert mask_name(decomposed) == "Nguyễn V. Á."


@pytest.mark.parametrize(
    "code",
    ["000.00.01.H40-260105-0007", " 000.00.31.H41-260309-0001 ", "G09.12-251231-12345"],
)
def test_codes(code: str) -> None:
    assert check_code(code) == code.strip()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "000.00.01.H40-260105",
        "000.00.01.H40-2601-0007",
        "000.00.01.H40-260105-07",
        "000.00.01.H40/260105-0007",
        "' OR 1=1 --",
        "A" * 80 + "-260105-0001",
    ],
)
def test_not_codes(text: str) -> None:
    with pytest.raises(InvalidDossierCode):
        check_code(text)


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    buckets = TokenBuckets(per_minute=3)  # one token every 20 s, bursts of 3
    assert [buckets.take("a", now=0.0) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a", now=0.0) == 20
    assert buckets.take("a", now=15.0) == 5
    assert buckets.take("b", now=15.0) == 0  # each address its own bucket
    assert buckets.take("a", now=20.0) == 0
    assert buckets.take("a", now=20.0) == 20
    assert [buckets.take("a", now=1000.0) for _ in range(4)] == [0, 0, 0, 20]  # never over burst


def test_bucket_keeps_at_most_max_keys() -> None:
    buckets = TokenBuckets(per_minute=60, max_keys=3)
    for n, key in enumerate("abc"):
        buckets.take(key, now=float(n))
    buckets.take("d", now=3.0)  # none full yet: the oldest (a) goes
    assert len(buckets) == 3
    assert buckets.take("d", now=3.0) == 0
    buckets.take("e", now=1000.0)  # all full again: forgotten
    assert len(buckets) == 1


def test_limiter_divides_the_budget_among_workers() -> None:
    limiter = LookupLimiter(per_minute=6, workers=2)  # this worker: 3 a minute
    for _ in range(3):
        limiter.check("10.0.0.1", now=0.0)
    with pytest.raises(TooManyLookups) as caught:
        limiter.check("10.0.0.1", now=0.0)
    assert caught.value.headers == {"Retry-After": "20"}
    LookupLimiter(per_minute=1, workers=4).check("x", now=0.0)  # at least one each
