"""What the dashboard counts: the columns of each figure group, the administrative levels, the
day a stored time falls on, and the histogram the medians are read from (docs/dashboard.md)."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from edxml import OrganId
from edxml.errors import EdxmlError
from storage.ids import from_db_time, to_db_time

VN = ZoneInfo("Asia/Ho_Chi_Minh")
FIGURES = ("exchange", "dossiers", "feedback")
LEVELS = ("central", "province", "district", "commune")
LEVEL_LABELS = {
    "central": "Trung ương",
    "province": "Cấp tỉnh",
    "district": "Cấp huyện",
    "commune": "Cấp xã",
}


@dataclass(frozen=True)
class Column:
    """One column of a figure group: its key, Vietnamese label and unit."""

    key: str
    label: str
    unit: str  # count | share (0..1) | seconds | days

    def to_json(self) -> dict[str, str]:
        """The column as the API gives it."""
        return {"key": self.key, "label": self.label, "unit": self.unit}


COLUMNS: dict[str, tuple[Column, ...]] = {
    "exchange": (
        Column("sent", "Văn bản gửi đi", "count"),
        Column("received", "Văn bản nhận về", "count"),
        Column("without_paper", "Gửi không kèm bản giấy", "count"),
        Column("share_without_paper", "Tỷ lệ không kèm bản giấy", "share"),
        Column("signed_valid", "Có chữ ký số hợp lệ", "count"),
        Column("share_signed_valid", "Tỷ lệ có chữ ký số hợp lệ", "share"),
        Column("signature_failed", "Chữ ký số không hợp lệ", "count"),
        Column("share_signature_failed", "Tỷ lệ chữ ký số không hợp lệ", "share"),
        Column("median_ack_seconds", "Trung vị thời gian đến khi nhận", "seconds"),
        Column(
            "median_first_processing_seconds", "Trung vị thời gian đến khi tiếp nhận", "seconds"
        ),
        Column("agencies_connected", "Cơ quan kết nối", "count"),
        Column("agencies_active", "Cơ quan hoạt động", "count"),
    ),
    "dossiers": (
        Column("received", "Hồ sơ tiếp nhận", "count"),
        Column("received_online", "Hồ sơ trực tuyến", "count"),
        Column("share_online", "Tỷ lệ hồ sơ trực tuyến", "share"),
        Column("finished", "Hồ sơ đã giải quyết", "count"),
        Column("on_time", "Giải quyết đúng hạn", "count"),
        Column("on_time_rate", "Tỷ lệ đúng hạn", "share"),
        Column("late", "Giải quyết trễ hạn", "count"),
        Column("open_overdue", "Đang giải quyết quá hạn", "count"),
        Column("avg_processing_days", "Thời gian giải quyết trung bình", "days"),
        Column("electronic_results", "Có kết quả điện tử", "count"),
        Column("share_electronic_results", "Tỷ lệ có kết quả điện tử", "share"),
    ),
    "feedback": (
        Column("received", "Phản ánh tiếp nhận", "count"),
        Column("answered", "Đã trả lời", "count"),
        Column("answered_on_time", "Trả lời đúng hạn", "count"),
        Column("on_time_rate", "Tỷ lệ trả lời đúng hạn", "share"),
        Column("rated", "Được đánh giá", "count"),
        Column("satisfied", "Hài lòng", "count"),
        Column("satisfaction_rate", "Tỷ lệ hài lòng", "share"),
    ),
}

# The medians' histogram: bucket i holds durations d with EDGES[i-1] <= d < EDGES[i] (bucket 0:
# under a minute; the last: 30 days or more). Fixed, so daily histograms add up exactly.
EDGES: tuple[int, ...] = (
    60,
    300,
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
    86400,
    172800,
    259200,
    604800,
    1209600,
    2592000,
)


def bucket(seconds: float) -> int:
    """The histogram bucket of a duration (negative durations count as zero)."""
    return bisect.bisect_right(EDGES, max(0.0, seconds))


def median_of(histogram: Mapping[int, int]) -> int | None:
    """The median of a histogram: the upper edge of the bucket that holds the ⌈n/2⌉-th
    smallest duration (the last bucket's lower edge, 30 days); None when it is empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    wanted, seen = (total + 1) // 2, 0
    for index in range(len(EDGES) + 1):
        seen += histogram.get(index, 0)
        if seen >= wanted:
            return EDGES[index] if index < len(EDGES) else EDGES[-1]
    return EDGES[-1]


@functools.lru_cache(maxsize=65536)
def level_of(organ_id: str) -> str:
    """The administrative level of an agency from its OrganId: a province's tree (letter ``H``)
    is ``province`` at levels 1–2 (the UBND and its departments), ``district`` at level 3,
    ``commune`` at level 4; every other id (ministries ``G``..., test ids) is ``central``."""
    try:
        parsed = OrganId.parse(organ_id)
    except EdxmlError:
        return "central"
    if parsed.is_test or not parsed.groups[-1].startswith("H"):
        return "central"
    return {1: "province", 2: "province", 3: "district"}.get(parsed.level, "commune")


@functools.lru_cache(maxsize=65536)
def is_within(organ_id: str, root: str) -> bool:
    """True when ``organ_id`` is ``root`` or under it in the OrganId tree."""
    if organ_id == root:
        return True
    try:
        return OrganId.parse(organ_id).is_under(OrganId.parse(root))
    except EdxmlError:
        return False


EVERYTHING = "*"
"""The root of the whole tree in the subtree rollups (every agency, also those of no tree)."""


@functools.lru_cache(maxsize=65536)
def roots_of(organ_id: str) -> tuple[str, ...]:
    """The subtrees an agency's counters are added to: its OrganId ancestors, nearest first,
    then :data:`EVERYTHING` (not the agency itself: its own rows are the per-agency ones)."""
    try:
        parent = OrganId.parse(organ_id).parent
    except EdxmlError:
        parent = None
    ancestors = []
    while parent is not None:
        ancestors.append(str(parent))
        parent = parent.parent
    return (*ancestors, EVERYTHING)


def day_of(stored: str) -> date:
    """The day (Asia/Ho_Chi_Minh) a stored time falls on (as the triggers' ``date(x, '+7
    hours')`` computes it)."""
    return (from_db_time(stored) + timedelta(hours=7)).date()


def day_bounds(day: date) -> tuple[str, str]:
    """The stored-time text of a day's start and of the next day's start (Asia/Ho_Chi_Minh)."""
    start = datetime.combine(day, time(), VN)
    return to_db_time(start), to_db_time(start + timedelta(days=1))


def seconds_between(start: str, end: str) -> float:
    """Seconds from one stored time to another."""
    return (from_db_time(end) - from_db_time(start)).total_seconds()


def today() -> date:
    """Today in Asia/Ho_Chi_Minh."""
    return datetime.now(UTC).astimezone(VN).date()
