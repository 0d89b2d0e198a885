"""The DVCQG sync on the real app and real SQLite, against a local adapter stand-in that checks
every request's shape strictly (ONE-STOP.md §2.2): a new dossier is pushed once, a move pushes
its progress step, nothing is re-sent when unchanged, failures are retried then succeed, a
dossier that keeps failing lands on the dead-letter list (listed and requeued by the CLI), the
export file holds the same JSON, and the adapter's token never reaches the logs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from axis_client import SO_TTTT, XA, Axis
from test_api_dossiers import APPLICANT, intake, moved, seed

from server.app.lifetimes import DVCQG
from server.cli import main
from server.dossiers.dvcqg import DvcqgSync
from server.runtime.config import Config, load_config

TOKEN = "dvcqg-adapter-secret-7f3a9c"
DATE = re.compile(r"^\d{14}$")

DOSSIER_FIELDS: dict[str, type] = {
    "MaHoSo": str, "MaTTHC": str, "TenTTHC": str, "MaLinhVuc": str, "TenLinhVuc": str,
    "ChuHoSo": str, "LoaiDoiTuong": str, "MaDoiTuong": str, "ThongTinKhac": str, "Email": str,
    "Fax": str, "SoDienThoai": str, "TrichYeuHoSo": str, "NgayTiepNhan": str, "NgayHenTra": str,
    "TrangThaiHoSo": str, "NgayTra": str, "ThongTinTra": str, "HinhThuc": str,
    "NgayKetThucXuLy": str, "DonViXuLy": str, "GhiChu": str, "TaiLieuNop": list,
    "DanhSachLePhi": list, "DanhSachTepDinhKemKhac": list, "DanhSachHoSoBoSung": list,
    "DanhSachGiayToKetQua": list,
}  # fmt: skip
STEP_FIELDS = (
    "MaHoSo", "NguoiXuLy", "ChucDanh", "ThoiDiemXuLy", "PhongBanXuLy", "NoiDungXuLy",
    "TrangThai", "NgayBatDau", "NgayKetThucTheoQuyDinh",
)  # fmt: skip
FILE_FIELDS = ("TepDinhKemId", "TenTepDinhKem", "IsDeleted", "MaThanhPhanHoSo", "DuongDanTaiTepTin")


def check_date(value: Any, name: str, *, required: bool) -> None:
    assert isinstance(value, str), name
    if value or required:
        assert DATE.match(value), f"{name}: {value!r} is not yyyyMMddHHmmss"
        # a real moment: month 01-12, day 01-31, hour < 24
        assert 1 <= int(value[4:6]) <= 12 and 1 <= int(value[6:8]) <= 31, name
        assert int(value[8:10]) < 24 and int(value[10:12]) < 60, name


def check_status(value: Any, name: str) -> None:
    assert isinstance(value, str) and value.isdigit() and 1 <= int(value) <= 10, (name, value)


def check_dossier(item: Any) -> None:
    assert isinstance(item, dict)
    for key, tp in DOSSIER_FIELDS.items():
        assert key in item, f"missing {key}"
        assert isinstance(item[key], tp), f"{key}: {type(item[key]).__name__}"
    assert item["MaHoSo"] and item["MaTTHC"] and item["ChuHoSo"]
    assert item["LoaiDoiTuong"] in {"1", "2"}
    assert item["HinhThuc"] in {"0", "1"}
    check_status(item["TrangThaiHoSo"], "TrangThaiHoSo")
    for key in ("NgayTiepNhan", "NgayHenTra"):
        check_date(item[key], key, required=True)
    for key in ("NgayTra", "NgayKetThucXuLy"):
        check_date(item[key], key, required=False)
    for f in item["TaiLieuNop"]:
        assert set(FILE_FIELDS) <= set(f) and all(isinstance(f[k], str) for k in FILE_FIELDS)


def check_step(item: Any) -> None:
    assert isinstance(item, dict)
    for key in STEP_FIELDS:
        assert isinstance(item.get(key), str), f"step {key}"
    check_status(item["TrangThai"], "TrangThai")
    check_date(item["ThoiDiemXuLy"], "ThoiDiemXuLy", required=True)
    check_date(item["NgayBatDau"], "NgayBatDau", required=True)
    check_date(item["NgayKetThucTheoQuyDinh"], "NgayKetThucTheoQuyDinh", required=True)


@dataclass
class Adapter:
    """The stand-in: checks each call; answers ``error_code`` 0, or fails ``fail`` more times."""

    url: str = ""
    fail: int = 0
    fail_with: str = "http"  # "http": 503; "refuse": 200 with error_code 1
    dossiers: list[dict[str, Any]] = field(default_factory=list)  # accepted DongBoHoSoMC bodies
    steps: list[dict[str, Any]] = field(default_factory=list)  # accepted CapNhatTienDoHoSoMC
    refused: int = 0

    def items(self, service: str) -> list[dict[str, Any]]:
        bodies = self.dossiers if service == "DongBoHoSoMC" else self.steps
        return [item for body in bodies for item in body["data"]]


@pytest.fixture
async def adapter(aiohttp_server: Any) -> AsyncIterator[Adapter]:
    state = Adapter()

    async def call(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.content_type == "application/json"
        assert request.headers["dstcode"]
        body = await request.json()
        assert isinstance(body, dict) and isinstance(body.get("data"), list) and body["data"]
        assert body["madonvi"] == request.headers["dstcode"]
        if body["service"] == "DongBoHoSoMC":
            assert body["isUpdating"] in {"True", "False"}
            assert set(body) == {"service", "isUpdating", "data", "madonvi"}
            for item in body["data"]:
                check_dossier(item)
        else:
            assert body["service"] == "CapNhatTienDoHoSoMC"
            assert set(body) == {"service", "data", "madonvi"}
            assert len(body["data"]) <= 10
            for item in body["data"]:
                check_step(item)
        if state.fail > 0:
            state.fail -= 1
            state.refused += 1
            if state.fail_with == "http":
                return web.Response(status=503, text="adapter busy")
            return web.json_response({"error_code": 1, "message": "session expired"})
        (state.dossiers if body["service"] == "DongBoHoSoMC" else state.steps).append(body)
        return web.json_response({"error_code": 0, "result": "OK"})

    app = web.Application()
    app.router.add_post("/dvcqg", call)
    server = await aiohttp_server(app)
    state.url = str(server.make_url("/dvcqg"))
    yield state


@pytest.fixture
def axis_config(tmp_path: Path, adapter: Adapter, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("LIENTHONG_DVCQG_TOKEN", TOKEN)
    return load_config(
        env={
            "LIENTHONG_SERVER_LOG_JSON": "0",
            "LIENTHONG_DVCQG_URL": adapter.url,
            "LIENTHONG_DVCQG_INTERVAL": "3600",  # the tests drive the passes themselves
            "LIENTHONG_DVCQG_BASE_DELAY": "0",  # a failed dossier is due again at once
            "LIENTHONG_DVCQG_MAX_ATTEMPTS": "3",
        },
        data_dir=tmp_path / "data",
    )


def sync_of(axis: Axis) -> DvcqgSync:
    return axis.client.app[DVCQG]


async def test_a_new_dossier_is_pushed_once_and_a_move_pushes_its_step(
    axis: Axis, adapter: Adapter
) -> None:
    await seed(axis)
    code = (await intake(axis))["code"]
    report = await sync_of(axis).run_once()
    assert (report.pushed, report.failed) == (1, 0)
    assert len(adapter.dossiers) == 1 and adapter.dossiers[0]["isUpdating"] == "False"
    [item] = adapter.items("DongBoHoSoMC")
    assert item["MaHoSo"] == code and item["TrangThaiHoSo"] == "2"
    assert item["ChuHoSo"] == "Nguyễn Văn An" and item["TenTTHC"] == "Đăng ký khai sinh"
    assert {f["MaThanhPhanHoSo"] for f in item["TaiLieuNop"]} == {"TK", "GCS"}
    assert [s["TrangThai"] for s in adapter.items("CapNhatTienDoHoSoMC")] == ["2"]

    # unchanged: nothing is sent again
    report = await sync_of(axis).run_once()
    assert report.pushed == 0
    assert len(adapter.dossiers) == 1 and len(adapter.steps) == 1

    # a move: the dossier (as an update) and only the new step
    await moved(axis, SO_TTTT, code, 4, note="Đang thẩm định")
    report = await sync_of(axis).run_once()
    assert (report.pushed, report.steps) == (1, 1)
    assert adapter.dossiers[-1]["isUpdating"] == "True"
    assert adapter.dossiers[-1]["data"][0]["TrangThaiHoSo"] == "4"
    [step] = adapter.steps[-1]["data"]
    assert (step["TrangThai"], step["NoiDungXuLy"], step["MaHoSo"]) == ("4", "Đang thẩm định", code)
    assert (await sync_of(axis).run_once()).pushed == 0
    assert len(adapter.dossiers) == 2 and len(adapter.steps) == 2


async def test_failures_are_retried_then_succeed(axis: Axis, adapter: Adapter) -> None:
    await seed(axis)
    code = (await intake(axis))["code"]
    adapter.fail = 2
    assert (await sync_of(axis).run_once()).failed == 1
    adapter.fail_with = "refuse"
    assert (await sync_of(axis).run_once()).failed == 1
    assert adapter.dossiers == []
    report = await sync_of(axis).run_once()
    assert (report.pushed, report.failed) == (1, 0)
    assert [i["MaHoSo"] for i in adapter.items("DongBoHoSoMC")] == [code]
    assert len(adapter.items("CapNhatTienDoHoSoMC")) == 1
    assert (await sync_of(axis).run_once()).pushed == 0


async def test_dead_letter_after_n_failures_listed_and_requeued_by_the_cli(
    axis: Axis, adapter: Adapter, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(axis)
    code = (await intake(axis))["code"]
    adapter.fail = 100
    reports = [await sync_of(axis).run_once() for _ in range(4)]
    assert [r.failed for r in reports] == [1, 1, 1, 0]  # max_attempts 3, then dead
    assert reports[2].dead == [code]
    assert adapter.refused == 3
    data = ["--data-dir", str(axis.config.storage.data_dir)]
    assert await asyncio.to_thread(main, ["dossier", "dvcqg-dead", "--json", *data]) == 0
    [line] = capsys.readouterr().out.splitlines()
    item = json.loads(line)
    assert item["code"] == code and item["attempts"] == 3 and "HTTP 503" in item["last_error"]
    assert await asyncio.to_thread(main, ["dossier", "dvcqg-retry", "nope", *data]) == 1
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["dossier", "dvcqg-retry", code, *data]) == 0
    assert "requeued" in capsys.readouterr().out
    adapter.fail = 0
    assert (await sync_of(axis).run_once()).pushed == 1
    assert [i["MaHoSo"] for i in adapter.items("DongBoHoSoMC")] == [code]
    assert await asyncio.to_thread(main, ["dossier", "dvcqg-dead", *data]) == 0
    assert "No dossier" in capsys.readouterr().out


async def test_the_export_file_holds_the_same_json(
    axis: Axis, adapter: Adapter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(axis)
    first = (await intake(axis))["code"]
    business = {**APPLICANT, "kind": "business", "id_number": "0101234567"}
    second = (await intake(axis, applicant=business))["code"]
    await moved(axis, SO_TTTT, first, 5, note="Thiếu giấy chứng sinh bản chính")
    await sync_of(axis).run_once()
    out = tmp_path / "dvcqg.json"
    data = ["--data-dir", str(axis.config.storage.data_dir)]
    argv = ["dossier", "export-dvcqg", "--since", "2020-01-01", "-o", str(out), *data]
    assert await asyncio.to_thread(main, argv) == 0
    assert "2 dossier(s), 3 step(s)" in capsys.readouterr().out
    document = json.loads(out.read_text("utf-8"))
    assert document["DongBoHoSoMC"]["service"] == "DongBoHoSoMC"
    exported = {i["MaHoSo"]: i for i in document["DongBoHoSoMC"]["data"]}
    pushed = {i["MaHoSo"]: i for i in adapter.items("DongBoHoSoMC")}
    assert exported == pushed and set(exported) == {first, second}
    for item in exported.values():
        check_dossier(item)
    assert exported[second]["LoaiDoiTuong"] == "2"
    [supplement] = exported[first]["DanhSachHoSoBoSung"]
    assert supplement["NoiDungBoSung"] == "Thiếu giấy chứng sinh bản chính"
    key = lambda s: (s["MaHoSo"], s["ThoiDiemXuLy"], s["TrangThai"])  # noqa: E731
    steps = sorted(document["CapNhatTienDoHoSoMC"]["data"], key=key)
    assert steps == sorted(adapter.items("CapNhatTienDoHoSoMC"), key=key)
    # nothing changed since tomorrow
    argv[3] = "2999-01-01"
    assert await asyncio.to_thread(main, argv) == 0
    assert json.loads(out.read_text("utf-8"))["DongBoHoSoMC"]["data"] == []


async def test_the_token_never_reaches_the_logs(
    axis: Axis, adapter: Adapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await seed(axis)
    await intake(axis, organ_id=XA)
    adapter.fail = 5
    for _ in range(3):
        await sync_of(axis).run_once()
    adapter.fail = 0
    assert "dvcqg sync" in caplog.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in json.dumps(record.__dict__, default=str)
    assert TOKEN not in caplog.text


def test_config_refuses_a_bad_url_and_bounds(tmp_path: Path) -> None:
    from server.runtime.config import ConfigError

    with pytest.raises(ConfigError, match=r"dvcqg\.url"):
        load_config(env={"LIENTHONG_DVCQG_URL": "ftp://x"}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"dvcqg\.max_attempts"):
        load_config(env={"LIENTHONG_DVCQG_MAX_ATTEMPTS": "0"}, data_dir=tmp_path)
    assert load_config(env={}, data_dir=tmp_path).dvcqg.url is None
