"""Sample slips (server/dossiers/slips.py) shared by the rendering and sealing tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from server.dossiers.slips import SlipComponent, SlipData, SlipKind

VN = timezone(timedelta(hours=7))
CODE = "000.00.01.H40-260105-0007"
LOOKUP_URL = f"https://lienthong.nghean.gov.vn/tra-cuu?ma={CODE}"
APPLICANT = "Nguyễn Văn Đức"
RECEIVED = datetime(2026, 1, 5, 9, 15, tzinfo=VN)
DUE = datetime(2026, 1, 19, 9, 15, tzinfo=VN)
NEW_DUE = datetime(2026, 1, 23, 16, 0, tzinfo=VN)

REASONS = {
    "apology": "Cần lấy ý kiến của Sở Xây dựng về chỉ giới xây dựng.",
    "refusal": "Thủ tục không thuộc thẩm quyền giải quyết của đơn vị.",
}
MISSING = (
    "Bản sao có chứng thực giấy chứng nhận quyền sử dụng đất",
    "Bản vẽ mặt bằng móng tỷ lệ 1/100",
)


def sample(kind: SlipKind) -> SlipData:
    """A slip of ``kind`` for a building-permit dossier received in Nghệ An."""
    return SlipData(
        kind=kind,
        unit_name="Trung tâm Phục vụ hành chính công tỉnh Nghệ An",
        parent_name="Ủy ban nhân dân tỉnh Nghệ An",
        dossier_code=CODE,
        procedure_code="1.004227",
        procedure_name="Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
        applicant_name=APPLICANT,
        applicant_address="Số 12 đường Lê Lợi, phường Hưng Bình, tỉnh Nghệ An",
        applicant_phone="0912 345 678",
        components=(
            SlipComponent("Đơn đề nghị cấp giấy phép xây dựng (Mẫu số 01)", originals=1),
            SlipComponent("Bản sao giấy tờ chứng minh quyền sử dụng đất", copies=1),
            SlipComponent("Hai bộ bản vẽ thiết kế xây dựng", originals=2),
        ),
        received_at=RECEIVED,
        due_at=None if kind == "refusal" else DUE,
        place="Nghệ An",
        officer_name="Trần Thị Hồng Nhung",
        lookup_url=LOOKUP_URL,
        issued_at=datetime(2026, 1, 20, 8, 0, tzinfo=VN) if kind == "apology" else None,
        new_due_at=NEW_DUE if kind == "apology" else None,
        reason=REASONS.get(kind, ""),
        missing=MISSING if kind == "supplement" else (),
        note="Nộp bổ sung tại quầy số 3 hoặc trực tuyến." if kind == "supplement" else "",
    )
