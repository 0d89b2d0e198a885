"""Code tables of QCVN 102:2016 (bảng mã): status codes, priorities, steering and business types."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class StatusCode(StrEnum):
    """Trạng thái xử lý văn bản — the processing status a recipient (or sender) reports."""

    RECEIVED = "01"  # đã đến
    REJECTED = "02"  # từ chối tiếp nhận
    ACCEPTED = "03"  # đã tiếp nhận
    ASSIGNED = "04"  # phân công
    PROCESSING = "05"  # đang xử lý
    COMPLETED = "06"  # hoàn thành
    RECALL_REQUESTED = "13"  # yêu cầu lấy lại
    RECALL_ACCEPTED = "15"  # đồng ý lấy lại/cập nhật
    RECALL_REFUSED = "16"  # từ chối lấy lại/cập nhật

    @property
    def label(self) -> str:
        """The Vietnamese label of the code, as shown to clerks."""
        return _STATUS_LABELS[self]

    @property
    def sent_by_sender(self) -> bool:
        """True for the codes only the original sender of a document may send (13)."""
        return self is StatusCode.RECALL_REQUESTED


_STATUS_LABELS = {
    StatusCode.RECEIVED: "Đã đến",
    StatusCode.REJECTED: "Từ chối tiếp nhận",
    StatusCode.ACCEPTED: "Đã tiếp nhận",
    StatusCode.ASSIGNED: "Phân công",
    StatusCode.PROCESSING: "Đang xử lý",
    StatusCode.COMPLETED: "Hoàn thành",
    StatusCode.RECALL_REQUESTED: "Yêu cầu lấy lại",
    StatusCode.RECALL_ACCEPTED: "Đồng ý lấy lại/cập nhật",
    StatusCode.RECALL_REFUSED: "Từ chối lấy lại/cập nhật",
}


class Priority(IntEnum):
    """Độ khẩn — urgency of a document."""

    NORMAL = 0  # thường
    URGENT = 1  # khẩn
    VERY_URGENT = 2  # thượng khẩn
    EXPRESS = 3  # hỏa tốc
    TIMED_EXPRESS = 4  # hỏa tốc hẹn giờ

    @property
    def label(self) -> str:
        """The Vietnamese label."""
        return ("Thường", "Khẩn", "Thượng khẩn", "Hỏa tốc", "Hỏa tốc hẹn giờ")[self.value]


class SteeringType(IntEnum):
    """Loại chỉ đạo — whether the document is a directive (meaning partly unconfirmed)."""

    NONE = 0
    DIRECTIVE = 1  # chỉ đạo
    REPORT_ON_DIRECTIVE = 2  # báo cáo thực hiện chỉ đạo


class BusinessDocType(IntEnum):
    """BussinessDocType — what a package does to a document (edXML spells it 'Bussiness')."""

    NEW = 0  # văn bản mới
    REVOKE = 1  # thu hồi
    UPDATE = 2  # cập nhật
    REPLACE = 3  # thay thế

    @property
    def label(self) -> str:
        """The Vietnamese label."""
        return ("Văn bản mới", "Thu hồi", "Cập nhật", "Thay thế")[self.value]
