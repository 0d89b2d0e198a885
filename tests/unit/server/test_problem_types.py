"""Domain errors carry their problem type; server/http/errors.py answers from it alone."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import make_mocked_request

import server.app.application  # noqa: F401 (imports every domain: all problem types defined)
from server.exchange import DuplicateDocument, UnknownRecipients
from server.http.errors import _HTTP_STATUS_SLUGS, LIBRARY_SLUGS, response_for_exception
from server.runtime.problems import PROBLEM_TYPES, DomainError, problem_type
from server.runtime.secretbox import SecretsError
from server.signatures.errors import VerifierBusy
from storage.errors import StorageFull


def answer(exc: BaseException) -> tuple[int, dict[str, str], dict[str, object]]:
    response = response_for_exception(make_mocked_request("GET", "/api/v1/x"), exc)
    assert response.text is not None
    return response.status, dict(response.headers), json.loads(response.text)


def test_every_slug_the_http_layer_names_is_defined() -> None:
    assert set(_HTTP_STATUS_SLUGS.values()) | LIBRARY_SLUGS <= set(PROBLEM_TYPES)


def test_a_domain_error_answers_with_its_own_type_detail_and_members() -> None:
    status, _, body = answer(UnknownRecipients(["000.00.00.G99"]))
    assert (status, body["type"], body["title"]) == (
        422,
        "/problems/unknown-recipient",
        "Unknown recipient",
    )
    assert body["unknown"] == ["000.00.00.G99"] and "000.00.00.G99" in str(body["detail"])
    status, _, body = answer(DuplicateDocument("DocumentId 7 was used for another package."))
    assert (status, body["detail"]) == (409, "DocumentId 7 was used for another package.")


def test_headers_a_domain_error_carries_and_retry_of_temporary_failures() -> None:
    status, headers, body = answer(VerifierBusy("Too many verifications.", retry_after=7))
    assert (status, headers["Retry-After"], body["type"]) == (
        503,
        "7",
        "/problems/verification-busy",
    )
    status, headers, _ = answer(SecretsError("no key"))
    assert (status, headers["Retry-After"]) == (503, "30")
    status, headers, body = answer(StorageFull("disk full"))
    assert (status, headers["Retry-After"], body["type"]) == (503, "30", "/problems/storage-full")


def test_a_domain_error_without_a_type_is_an_internal_error() -> None:
    class Unclassified(DomainError):
        pass

    status, _, body = answer(Unclassified("secret internals"))
    assert (status, body["type"]) == (500, "/problems/internal-error")
    assert "secret internals" not in json.dumps(body)


def test_a_slug_is_defined_once() -> None:
    same = PROBLEM_TYPES["not-found"]
    assert problem_type(same.slug, same.status, same.title, same.description) is not None
    with pytest.raises(ValueError, match="defined twice"):
        problem_type("not-found", 410, "Gone", "Another meaning.")
