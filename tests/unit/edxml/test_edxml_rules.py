"""edxml.validate: a test per rule, 1-based paths, limits as warnings, no errors in the corpus."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

import edxml
from edxml import (
    VN_TZ,
    Attachment,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    Code,
    DocumentType,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    OtherInfo,
    Priority,
    Problem,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusMessage,
    TraceHeader,
)

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1] / "corpus" / "edxml"
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/corpus/edxml")

TODAY = dt.date(2024, 6, 1)
DOC_ID = "000.00.00.G22,2024/03/01,12/VPCP-TTĐT"
WHEN = dt.datetime(2024, 3, 1, 9, 30, tzinfo=VN_TZ)


def header(**changes: object) -> MessageHeader:
    base = MessageHeader(
        from_=Organization("000.00.00.G22", organ_name="Văn phòng Chính phủ"),
        to=(Organization("000.00.00.H41"), Organization("000.00.14.H20")),
        document_id=DOC_ID,
        subject="V/v kết nối, liên thông",
        code=Code("12", "VPCP-TTĐT"),
        promulgation_info=PromulgationInfo("Hà Nội", dt.date(2024, 3, 1)),
        other_info=OtherInfo(priority=Priority.NORMAL),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def envelope(**changes: object) -> Envelope:
    base = Envelope(
        header=header(),
        trace_headers=(TraceHeader("000.00.00.G22", WHEN),),
        manifest=(ManifestReference("cid:1", "application/pdf", None, "a.pdf"),),
        attachments=(Attachment("1", "a.pdf", None, "application/pdf", data=b"%PDF"),),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def status(**changes: object) -> StatusMessage:
    base = StatusMessage(
        from_=Organization("000.00.00.H41"),
        response_for=ResponseFor("000.00.00.G22", "12/VPCP-TTĐT", dt.date(2024, 3, 1), DOC_ID),
        status_code=StatusCode.ACCEPTED,
        staff_info=StaffInfo("Văn thư", "Nguyễn Thị A", "0912", "a@example.vn"),
        timestamp=WHEN,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def problems(obj: Envelope | StatusMessage) -> list[Problem]:
    return edxml.validate(obj, today=TODAY)


def errors(obj: Envelope | StatusMessage) -> dict[str, str]:
    return {p.path: p.message for p in problems(obj) if p.is_error}


def warnings(obj: Envelope | StatusMessage) -> dict[str, str]:
    return {p.path: p.message for p in problems(obj) if p.severity == "warning"}


# ---------------------------------------------------------------------------- baseline


def test_a_good_package_has_no_problem() -> None:
    assert problems(envelope()) == []
    assert problems(status()) == []


def test_problems_are_model_problems_with_a_severity() -> None:
    found = problems(envelope(header=header(subject=None, code=Code("123456789012"))))
    assert all(isinstance(p, Problem) for p in found)
    assert {p.severity for p in found} == {"error", "warning"}


def test_validate_refuses_other_objects() -> None:
    with pytest.raises(TypeError):
        edxml.validate("package")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- header errors


@pytest.mark.parametrize("value", ["", "   "])
def test_missing_from_organ_id(value: str) -> None:
    found = errors(envelope(header=header(from_=Organization(value))))
    assert "missing" in found["MessageHeader/From/OrganId"]


def test_malformed_from_organ_id() -> None:
    found = errors(envelope(header=header(from_=Organization("VPCP"))))
    assert list(found) == []  # "VPCP" is a valid single-group 2022 id
    found = errors(envelope(header=header(from_=Organization("000.00.00.g22 "))))
    assert "spaces" in found["MessageHeader/From/OrganId"]
    found = errors(envelope(header=header(from_=Organization("Văn phòng"))))
    assert "not an organisation id" in found["MessageHeader/From/OrganId"]


def test_no_recipient() -> None:
    assert "no recipient" in errors(envelope(header=header(to=())))["MessageHeader/To"]


def test_malformed_recipient_is_named_by_its_1_based_position() -> None:
    to = (Organization("000.00.00.H41"), Organization("000 00 00 H14"), Organization(""))
    found = errors(envelope(header=header(to=to)))
    assert set(found) == {"MessageHeader/To[2]/OrganId", "MessageHeader/To[3]/OrganId"}
    assert "not an organisation id" in found["MessageHeader/To[2]/OrganId"]
    assert "missing" in found["MessageHeader/To[3]/OrganId"]


def test_duplicate_recipient() -> None:
    to = (
        Organization("000.00.00.H41"),
        Organization("000.00.00.H14"),
        Organization("000.00.00.H41"),
    )
    found = errors(envelope(header=header(to=to)))
    assert found == {"MessageHeader/To[3]/OrganId": "000.00.00.H41 is already a recipient (To[1])"}


@pytest.mark.parametrize("value", [None, "", " "])
def test_missing_document_id(value: str | None) -> None:
    assert (
        "DocumentId is missing"
        in errors(envelope(header=header(document_id=value)))["MessageHeader/DocumentId"]
    )


@pytest.mark.parametrize("value", [None, ""])
def test_missing_subject(value: str | None) -> None:
    assert "subject" in errors(envelope(header=header(subject=value)))["MessageHeader/Subject"]


def test_promulgation_date_in_the_future() -> None:
    path = "MessageHeader/PromulgationInfo/PromulgationDate"
    today = envelope(header=header(promulgation_info=PromulgationInfo("Hà Nội", TODAY)))
    assert errors(today) == {}
    tomorrow = envelope(
        header=header(promulgation_info=PromulgationInfo("Hà Nội", TODAY + dt.timedelta(days=1)))
    )
    assert "in the future" in errors(tomorrow)[path]


def test_today_defaults_to_the_real_date_in_vietnam() -> None:
    far = envelope(header=header(promulgation_info=PromulgationInfo(None, dt.date(2999, 1, 1))))
    assert any(p.is_error and "future" in p.message for p in edxml.validate(far))
    past = envelope(header=header(promulgation_info=PromulgationInfo(None, dt.date(2001, 1, 1))))
    assert not [p for p in edxml.validate(past) if p.is_error]


@pytest.mark.parametrize("value", [-1, 5, 9])
def test_priority_out_of_range(value: int) -> None:
    found = errors(envelope(header=header(other_info=OtherInfo(priority=value))))  # type: ignore[arg-type]
    assert "between 0" in found["MessageHeader/OtherInfo/Priority"]


@pytest.mark.parametrize("value", list(Priority))
def test_every_priority_is_fine(value: Priority) -> None:
    assert errors(envelope(header=header(other_info=OtherInfo(priority=value)))) == {}


def test_negative_amounts() -> None:
    found = errors(
        envelope(header=header(other_info=OtherInfo(promulgation_amount=-1, page_amount=-2)))
    )
    assert set(found) == {
        "MessageHeader/OtherInfo/PromulgationAmount",
        "MessageHeader/OtherInfo/PageAmount",
    }


# ---------------------------------------------------------------------------- manifest


def test_manifest_reference_without_attachment() -> None:
    env = envelope(
        manifest=(ManifestReference("cid:1"), ManifestReference("cid:2", attachment_name="b.pdf"))
    )
    message = "the manifest lists cid:2 but no attachment has that ContentId"
    assert errors(env) == {"edXMLManifest/Reference[2]": message}


def test_attachment_without_manifest_reference() -> None:
    env = envelope(manifest=())
    assert errors(env) == {
        "AttachmentEncoded/Attachment[1]": "attachment 1 is not listed in the manifest"
    }


@pytest.mark.parametrize("spelling", ["1", "cid:1", " cid:1 ", "CID:1", "cid:<1>"])
def test_content_ids_match_with_or_without_cid(spelling: str) -> None:
    env = envelope(manifest=(ManifestReference(spelling),))
    assert errors(env) == {}


def test_duplicate_content_ids() -> None:
    env = envelope(
        manifest=(ManifestReference("cid:1"), ManifestReference("1")),
        attachments=(Attachment("1", "a", data=b""), Attachment("cid:1", "b", data=b"")),
    )
    found = errors(env)
    assert "twice" in found["edXMLManifest/Reference[2]/ContentId"]
    assert "two attachments" in found["AttachmentEncoded/Attachment[2]/ContentId"]


def test_missing_content_id() -> None:
    env = envelope(manifest=(ManifestReference(""),), attachments=())
    assert "missing" in errors(env)["edXMLManifest/Reference[1]/ContentId"]


def test_attachment_without_name_is_a_warning() -> None:
    env = envelope(attachments=(Attachment("1", data=b""),))
    assert errors(env) == {}
    assert "no file name" in warnings(env)["AttachmentEncoded/Attachment[1]/AttachmentName"]


# ---------------------------------------------------------------------------- status messages


def test_status_without_response_for_document_id() -> None:
    found = errors(status(response_for=ResponseFor()))
    assert set(found) == {
        "MessageHeader/ResponseFor/DocumentId",
        "MessageHeader/ResponseFor/OrganId",
    }


def test_status_with_malformed_ids() -> None:
    found = errors(
        status(from_=Organization("x y"), response_for=ResponseFor("bad id", document_id=DOC_ID))
    )
    assert set(found) == {"MessageHeader/From/OrganId", "MessageHeader/ResponseFor/OrganId"}


def test_status_without_time_is_a_warning() -> None:
    assert "no time" in warnings(status(timestamp=None))["MessageHeader/Timestamp"]


def test_response_for_in_a_document_needs_no_document_id_but_is_flagged() -> None:
    env = envelope(header=header(response_for=(ResponseFor(),)))
    assert errors(env) == {}
    assert "MessageHeader/ResponseFor[1]/DocumentId" in warnings(env)


# ---------------------------------------------------------------------------- business


def test_revoke_without_the_revoked_document() -> None:
    env = envelope(business=Business(BusinessDocType.REVOKE, "Thu hồi"))
    assert "revocation" in errors(env)["TraceHeaderList/Bussiness/DocumentId"]


def test_revoke_naming_the_document_in_business_or_response_for() -> None:
    in_business = envelope(business=Business(BusinessDocType.REVOKE, document_id=DOC_ID))
    assert errors(in_business) == {}
    in_response = envelope(
        header=header(response_for=(ResponseFor("000.00.00.G22", document_id=DOC_ID),)),
        business=Business(BusinessDocType.REVOKE),
    )
    assert errors(in_response) == {}


def test_update_without_the_updated_document() -> None:
    env = envelope(business=Business(BusinessDocType.UPDATE, "Cập nhật"))
    assert "update" in errors(env)["TraceHeaderList/Bussiness/DocumentId"]
    # ResponseFor does not stand in for it: the update names its target in Bussiness.
    env = envelope(
        header=header(response_for=(ResponseFor(document_id=DOC_ID),)),
        business=Business(BusinessDocType.UPDATE),
    )
    assert "TraceHeaderList/Bussiness/DocumentId" in errors(env)


def test_update_receivers_need_valid_ids() -> None:
    info = BusinessDocumentInfo(1, 1, (Receiver("000.00.00.H41", 0), Receiver("???", 1)))
    env = envelope(
        business=Business(BusinessDocType.UPDATE, document_id=DOC_ID, document_info=info)
    )
    assert set(errors(env)) == {
        "TraceHeaderList/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver[2]/OrganId"
    }


def test_replace_without_the_replaced_document() -> None:
    env = envelope(business=Business(BusinessDocType.REPLACE, "Thay thế"))
    assert "replacement" in errors(env)["TraceHeaderList/Bussiness/ReplacementInfoList"]


def test_replace_details_are_checked() -> None:
    env = envelope(
        business=Business(
            BusinessDocType.REPLACE,
            replacements=(
                ReplacementInfo(DOC_ID, ("000.00.00.H41",)),
                ReplacementInfo("", ("000.00.00.H41", "not valid")),
                ReplacementInfo(DOC_ID),
            ),
        )
    )
    base = "TraceHeaderList/Bussiness/ReplacementInfoList"
    assert set(errors(env)) == {
        f"{base}/ReplacementInfo[2]/DocumentId",
        f"{base}/ReplacementInfo[2]/OrganIdList/OrganId[2]",
    }
    assert f"{base}/ReplacementInfo[3]/OrganIdList" in warnings(env)


def test_new_documents_need_no_business_document_id() -> None:
    assert errors(envelope(business=Business(BusinessDocType.NEW))) == {}


def test_status_messages_carrying_business_are_checked_too() -> None:
    found = errors(status(business=Business(BusinessDocType.UPDATE)))
    assert "TraceHeaderList/Bussiness/DocumentId" in found


# ---------------------------------------------------------------------------- warnings


ORG_FIELDS = {
    "OrganizationInCharge": ("organization_in_charge", 200),
    "OrganName": ("organ_name", 200),
    "OrganAdd": ("organ_add", 250),
    "Email": ("email", 100),
    "Telephone": ("telephone", 20),
    "Fax": ("fax", 20),
}


@pytest.mark.parametrize("element", sorted(ORG_FIELDS))
def test_organization_length_limits_are_warnings(element: str) -> None:
    field, limit = ORG_FIELDS[element]
    at_limit = Organization("000.00.00.H14", **{field: "x" * limit})
    over = Organization("000.00.00.H14", **{field: "x" * (limit + 1)})
    to = (Organization("000.00.00.H41"),)
    assert problems(envelope(header=header(to=(*to, at_limit)))) == []
    found = problems(envelope(header=header(to=(*to, over))))
    assert found == [
        Problem(
            f"MessageHeader/To[2]/{element}",
            f"is {limit + 1} characters long; the usual limit is {limit} characters",
            "warning",
        )
    ]


def _with(path: str, text: str) -> Envelope:
    h = header()
    builders = {
        "MessageHeader/Code/CodeNumber": lambda: header(code=Code(text, "X")),
        "MessageHeader/Code/CodeNotation": lambda: header(code=Code("1", text)),
        "MessageHeader/PromulgationInfo/Place": lambda: header(
            promulgation_info=PromulgationInfo(text, None)
        ),
        "MessageHeader/DocumentType/TypeName": lambda: header(
            document_type=DocumentType(1, None, text)
        ),
        "MessageHeader/Subject": lambda: header(subject=text),
        "MessageHeader/Content": lambda: header(content=text),
        "MessageHeader/SignerInfo/Competence": lambda: header(signer_info=SignerInfo(text)),
        "MessageHeader/SignerInfo/Position": lambda: header(signer_info=SignerInfo(None, text)),
        "MessageHeader/SignerInfo/FullName": lambda: header(
            signer_info=SignerInfo(None, None, text)
        ),
        "MessageHeader/ToPlaces/Place[2]": lambda: header(to_places=("ok", text)),
        "MessageHeader/OtherInfo/SphereOfPromulgation": lambda: header(
            other_info=OtherInfo(sphere_of_promulgation=text)
        ),
        "MessageHeader/OtherInfo/TyperNotation": lambda: header(
            other_info=OtherInfo(typer_notation=text)
        ),
        "MessageHeader/OtherInfo/Appendixes/Appendix[1]": lambda: header(
            other_info=OtherInfo(appendixes=(text,))
        ),
    }
    h = builders[path]()
    return envelope(header=h)


LIMITS = {
    "MessageHeader/Code/CodeNumber": 11,
    "MessageHeader/Code/CodeNotation": 30,
    "MessageHeader/PromulgationInfo/Place": 50,
    "MessageHeader/DocumentType/TypeName": 100,
    "MessageHeader/Subject": 500,
    "MessageHeader/Content": 500,
    "MessageHeader/SignerInfo/Competence": 100,
    "MessageHeader/SignerInfo/Position": 100,
    "MessageHeader/SignerInfo/FullName": 50,
    "MessageHeader/ToPlaces/Place[2]": 150,
    "MessageHeader/OtherInfo/SphereOfPromulgation": 100,
    "MessageHeader/OtherInfo/TyperNotation": 10,
    "MessageHeader/OtherInfo/Appendixes/Appendix[1]": 250,
}


@pytest.mark.parametrize("path", sorted(LIMITS))
def test_document_length_limits_are_warnings(path: str) -> None:
    limit = LIMITS[path]
    assert problems(_with(path, "đ" * limit)) == []  # characters, not bytes
    found = problems(_with(path, "đ" * (limit + 1)))
    assert [(p.path, p.severity) for p in found] == [(path, "warning")]
    assert f"limit is {limit}" in found[0].message


def test_trace_headers_from_axes_are_only_warned_about() -> None:
    env = envelope(
        trace_headers=(
            TraceHeader("null", WHEN),
            TraceHeader(None, WHEN),
            TraceHeader("01.02.G22", WHEN),
            TraceHeader("not an id!", WHEN),
            TraceHeader("000.00.00.G22", None),
        )
    )
    assert errors(env) == {}
    found = warnings(env)
    assert set(found) == {
        "TraceHeaderList/TraceHeader[1]/OrganId",
        "TraceHeaderList/TraceHeader[2]/OrganId",
        "TraceHeaderList/TraceHeader[4]/OrganId",
        "TraceHeaderList/TraceHeader[5]/Timestamp",
    }
    assert "placeholder" in found["TraceHeaderList/TraceHeader[1]/OrganId"]


def test_test_organisation_ids_are_flagged() -> None:
    env = envelope(header=header(from_=Organization("vxp.saas.03")))
    assert errors(env) == {}
    assert "test organisation id" in warnings(env)["MessageHeader/From/OrganId"]


def test_unknown_codes_are_warnings() -> None:
    env = envelope(
        header=header(steering_type=5, document_type=DocumentType(7)),
        business=Business(BusinessDocType.NEW, paper=2),
    )
    assert errors(env) == {}
    assert set(warnings(env)) == {
        "MessageHeader/SteeringType",
        "MessageHeader/DocumentType/Type",
        "TraceHeaderList/Bussiness/Paper",
    }


def test_document_id_convention() -> None:
    assert (
        problems(envelope(header=header(document_id="9fbfbad2-f1f8-4256-a2eb-50fb1061cddb"))) == []
    )
    found = warnings(envelope(header=header(document_id="000.00.00.G22,2014/02/30,1/X")))
    assert "does not exist" in found["MessageHeader/DocumentId"]
    found = warnings(envelope(header=header(document_id="VPCP GOV,2014/02/03,1/X")))
    assert "not an organisation id" in found["MessageHeader/DocumentId"]


# ---------------------------------------------------------------------------- the corpus

# What validate finds in the real packages, all of it warnings (the corpus is not wrong enough
# to refuse): test ids vxp.saas.0x of the axis' test systems; CodeNumbers of 14 characters
# (gateway timestamps such as 20251016112435, over the usual 11); TraceHeaders that an axis
# appended with OrganId "null" or none; and, in the SDK samples, a Bussiness/DocumentId dated
# 2014/02/30, a day that does not exist.
CORPUS_WARNINGS = {
    "test organisation id",
    "the usual limit is 11 characters",
    "this trace entry does not say who added it",
    "the date 2014/02/30 in the DocumentId does not exist",
}


@pytest.mark.parametrize(
    "name",
    sorted(
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.rglob("*.edxml")
        if p.name != "edoc.edxml"  # not well-formed: the reader refuses it
    ),
)
def test_every_corpus_file_has_no_errors(name: str) -> None:
    # Today's real date: the corpus packages are all dated in the past.
    found = edxml.validate(edxml.parse((CORPUS / name).read_bytes()))
    assert [p for p in found if p.is_error] == []
    for p in found:
        assert any(known in p.message for known in CORPUS_WARNINGS), p
