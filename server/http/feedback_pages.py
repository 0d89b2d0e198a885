"""The citizens' feedback pages (phản ánh, kiến nghị, issue 17), in Vietnamese, usable on a
phone, rendered on the server from the feedback domain (no CDN, every text escaped):

* ``GET /phan-anh``: the form (category, title, content, place: an address and/or a point,
  up to 5 photos, name and a phone or an e-mail); ``POST /phan-anh`` (multipart) sends it
  through the domain's intake, rate-limited per client address like ``POST /api/v1/feedback``,
  and answers with the feedback's code and the sender's private link; a refusal shows the form
  again with what was typed and the field named.
* ``GET /phan-anh/da-tra-loi``: published feedback and their answers (newest first, ``?sau=``
  the cursor), the sender's name masked, never the contacts, only the photos an officer
  approved (``GET /phan-anh/anh/{code}/{n}``).
* ``GET /phan-anh/{code}?token=``: the sender's private page (progress, limits, the answer);
  ``POST /phan-anh/{code}`` (``token``, ``rating``) rates the answer once. The token never
  leaves the page: ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import IO, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web

from server.feedback.errors import FeedbackNotFound, InvalidFeedback, TooManyRequests
from server.feedback.intake import by_token, read_submission, submit
from server.feedback.moves import RATINGS, rate
from server.feedback.photos import MAX_PHOTOS
from server.feedback.views import private_view, public_view
from server.http.appkeys import DATABASE
from server.http.errors import HttpProblem, readable_form
from server.http.feedback import check_rate, photo_number, photo_response, private_link, services_of
from server.http.headers import with_nonces
from server.runtime.problems import DomainError
from storage.repos.agencies import AgencyRepo
from storage.repos.feedback import CategoryRepo, CategoryRow, FeedbackRepo

routes = web.RouteTableDef()

_UNREADABLE = "Không đọc được biểu mẫu đã gửi; vui lòng tải lại trang và gửi lại."

PAGE = "/phan-anh"
PUBLISHED = "/phan-anh/da-tra-loi"
PER_PAGE = 20
_CODE = "{code:[A-Z]+-[0-9]+-[0-9]+}"  # PA-YYMMDD-NNNN (server/feedback/intake.py)
_FIELDS = ("category", "title", "content", "address", "lat", "long", "name", "phone", "email")
# The form's words for the fields the domain names in its refusals.
LABELS = {
    "category": "Lĩnh vực",
    "title": "Tiêu đề",
    "content": "Nội dung",
    "address": "Địa chỉ",
    "lat": "Vĩ độ",
    "long": "Kinh độ",
    "name": "Họ và tên",
    "phone": "Điện thoại",
    "email": "Thư điện tử",
    "photos": "Ảnh",
    "rating": "Đánh giá",
}

_STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;max-width:46rem;
margin:1rem auto;padding:0 1rem;line-height:1.55;color:#1b1b1b}
h1{color:#a50e0e;margin-bottom:.2rem;font-size:1.6rem}
label{display:block;margin:.7rem 0 .2rem;font-weight:600}
input,select,textarea,button{font:inherit;width:100%;padding:.5rem .6rem}
button{width:auto;padding:.55rem 1.1rem;margin-top:1rem;cursor:pointer}
fieldset{border:1px solid #ccc;margin:1rem 0;padding:.4rem .8rem .8rem}
.row{display:flex;gap:.6rem}.row>div{flex:1}
.error{color:#b00020;border-left:4px solid #b00020;padding:.3rem .7rem;background:#fdecee}
.muted{color:#666;font-size:.9rem} .code{font-size:1.3rem;font-weight:bold;color:#1a5fb4}
dl{display:grid;grid-template-columns:max-content auto;gap:.15rem .9rem}
dt{color:#555} dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left}
article{border-bottom:1px solid #ddd;padding:.6rem 0}
article img{max-width:100%;height:auto;margin:.3rem 0}
.answer{background:#eef5ee;padding:.5rem .8rem;white-space:pre-wrap}
.content{white-space:pre-wrap}
"""

_LOCATE = """
<script>
document.getElementById('locate').addEventListener('click', function () {
  var say = document.getElementById('where');
  if (!navigator.geolocation) { say.textContent = 'Trình duyệt không hỗ trợ định vị.'; return; }
  navigator.geolocation.getCurrentPosition(function (p) {
    document.getElementById('lat').value = p.coords.latitude.toFixed(6);
    document.getElementById('long').value = p.coords.longitude.toFixed(6);
    say.textContent = '';
  }, function () { say.textContent = 'Không lấy được vị trí.'; });
});
function showAttributes() {
  var chosen = document.getElementById('category').value;
  document.querySelectorAll('fieldset.attrs').forEach(function (set) {
    set.hidden = set.dataset.category !== chosen;
  });
}
document.getElementById('category').addEventListener('change', showAttributes);
showAttributes();
document.getElementById('form').addEventListener('submit', function (e) {
  var files = document.getElementById('photo').files;
  if (files.length > MAX) {
    e.preventDefault();
    document.getElementById('where').textContent = 'Chỉ gửi được tối đa MAX ảnh.';
  }
});
</script>
""".replace("MAX", str(MAX_PHOTOS))


def _page(
    request: web.Request, title: str, body: str, *, status: int = 200, script: str = ""
) -> web.Response:
    """A page: ``body`` (escaped data in the axis's markup) between the head and ``script``,
    the axis's own style and script carrying the request's CSP nonce (server/http/headers.py)."""
    head = (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} — Liên Thông</title><style>{_STYLE}</style></head><body>"
    )
    html = with_nonces(request, head) + body + with_nonces(request, script) + "</body></html>"
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


def _local(moment: str | datetime | None, zone: ZoneInfo) -> str:
    """``dd/mm/yyyy HH:MM`` in the axis's zone; ``—`` for nothing."""
    if moment is None:
        return "—"
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return when.astimezone(zone).strftime("%d/%m/%Y %H:%M")


def _options(categories: list[CategoryRow], chosen: str) -> str:
    groups: dict[str, list[CategoryRow]] = {}
    for c in categories:
        groups.setdefault(c.group, []).append(c)
    out = ['<option value="">— Chọn lĩnh vực —</option>']
    for group, members in groups.items():
        items = "".join(
            f'<option value="{escape(c.code)}"{" selected" if c.code == chosen else ""}>'
            f"{escape(c.name)}</option>"
            for c in members
        )
        out.append(f'<optgroup label="{escape(group)}">{items}</optgroup>' if group else items)
    return "".join(out)


def _attribute(category: str, a: Mapping[str, Any], given: Mapping[str, str]) -> str:
    """One Open311 attribute of a category as a form control, named
    ``attributes[CATEGORY][CODE]`` (only the chosen category's are read)."""
    name = escape(f"attributes[{category}][{a['code']}]")
    ident = escape(f"attr-{category}-{a['code']}")
    value = escape(given.get(f"attributes[{category}][{a['code']}]", ""))
    required = " *" if a.get("required") else ""
    label = f'<label for="{ident}">{escape(a["description"])}{required}</label>'
    if not a.get("variable", True):
        return f'<p class="muted">{escape(a["description"])}</p>'
    datatype = a["datatype"]
    if datatype in ("singlevaluelist", "multivaluelist"):
        multiple = " multiple" if datatype == "multivaluelist" else ""
        first = "" if multiple else '<option value="">— Chọn —</option>'
        chosen = given.get(f"attributes[{category}][{a['code']}]")
        options = "".join(
            f'<option value="{escape(v["key"])}"{" selected" if v["key"] == chosen else ""}>'
            f"{escape(v['name'])}</option>"
            for v in a.get("values", ())
        )
        return f'{label}<select id="{ident}" name="{name}"{multiple}>{first}{options}</select>'
    if datatype == "text":
        return f'{label}<textarea id="{ident}" name="{name}" rows="3">{value}</textarea>'
    kind = {"number": 'number" step="any', "datetime": "datetime-local"}.get(datatype, "text")
    return f'{label}<input type="{kind}" id="{ident}" name="{name}" value="{value}">'


def _attributes(categories: list[CategoryRow], given: Mapping[str, str]) -> str:
    """A fieldset per category with attributes; the script shows the chosen category's only
    (without it, all are shown and only the chosen category's are read)."""
    return "".join(
        f'<fieldset class="attrs" data-category="{escape(c.code)}"><legend>Thông tin thêm: '
        f"{escape(c.name)}</legend>"
        + "".join(_attribute(c.code, a, given) for a in c.attributes)
        + "</fieldset>"
        for c in categories
        if c.attributes
    )


def _input(name: str, given: Mapping[str, str], kind: str = "text", extra: str = "") -> str:
    value = escape(given.get(name, ""))
    return (
        f'<label for="{name}">{LABELS[name]}</label>'
        f'<input type="{kind}" id="{name}" name="{name}" value="{value}" {extra}>'
    )


async def _form(
    request: web.Request, given: Mapping[str, str], error: str = "", status: int = 200
) -> web.Response:
    async with request.app[DATABASE].reader() as tx:
        categories = await CategoryRepo(tx).all()
    alert = f'<p class="error" id="error" role="alert">{escape(error)}</p>' if error else ""
    content = escape(given.get("content", ""))
    body = f"""
<h1>Gửi phản ánh, kiến nghị</h1>
<p class="muted">Phản ánh về hạ tầng, môi trường, thủ tục hành chính, thái độ cán bộ… Cơ quan
có thẩm quyền sẽ trả lời; câu trả lời được công khai tại
<a href="{PUBLISHED}">các phản ánh đã trả lời</a> (tên người gửi được che, số điện thoại và thư
điện tử không bao giờ công khai).</p>
{alert}
<form id="form" method="post" action="{PAGE}" enctype="multipart/form-data">
<label for="category">{LABELS["category"]}</label>
<select id="category" name="category" required>{_options(categories, given.get("category", ""))}
</select>
{_attributes(categories, given)}
{_input("title", given, extra='maxlength="200" required')}
<label for="content">{LABELS["content"]}</label>
<textarea id="content" name="content" rows="6" maxlength="4000" required>{content}</textarea>
<fieldset><legend>Địa điểm (địa chỉ và/hoặc vị trí)</legend>
{_input("address", given, extra='maxlength="500" placeholder="Số nhà, đường, phường/xã"')}
<div class="row"><div>{_input("lat", given, extra='inputmode="decimal"')}</div>
<div>{_input("long", given, extra='inputmode="decimal"')}</div></div>
<button type="button" id="locate">Lấy vị trí hiện tại</button> <span id="where"></span>
</fieldset>
<label for="photo">Ảnh (tối đa {MAX_PHOTOS} ảnh)</label>
<input type="file" id="photo" name="photo" accept="image/*" multiple>
<fieldset><legend>Người gửi (Nghị định 20/2008/NĐ-CP, Điều 7)</legend>
{_input("name", given, extra='maxlength="200" required autocomplete="name"')}
{_input("phone", given, "tel", 'maxlength="30" autocomplete="tel"')}
{_input("email", given, "email", 'maxlength="254" autocomplete="email"')}
<p class="muted">Cần số điện thoại hoặc thư điện tử để cơ quan liên hệ khi cần.</p>
</fieldset>
<button type="submit" id="send">Gửi phản ánh</button>
</form>"""
    return _page(request, "Gửi phản ánh, kiến nghị", body, status=status, script=_LOCATE)


@routes.get(PAGE)
async def form_page(request: web.Request) -> web.Response:
    """The empty form."""
    return await _form(request, {})


async def _posted(request: web.Request) -> tuple[dict[str, Any], list[IO[bytes]]]:
    """The form's fields, the chosen category's attributes and the chosen photos (an empty
    file input sends a nameless empty part: skipped)."""
    posted = await request.post()
    category = str(posted.get("category", ""))
    prefix = f"attributes[{category}]["
    fields: dict[str, Any] = {}
    attributes: dict[str, list[str]] = {}
    photos: list[IO[bytes]] = []
    for name, value in posted.items():
        if isinstance(value, web.FileField):
            if name == "photo" and value.filename:
                photos.append(value.file)
        elif name.startswith(prefix) and name.endswith("]"):
            attributes.setdefault(name[len(prefix) : -1], []).append(str(value))
        elif name in _FIELDS:
            fields[name] = value
    if attributes:
        fields["attributes"] = {k: v[0] if len(v) == 1 else v for k, v in attributes.items()}
    return fields, photos


def _refusal(exc: DomainError) -> str:
    field = getattr(exc, "field", None)
    if isinstance(exc, TooManyRequests):
        return "Bạn gửi quá nhiều lần trong thời gian ngắn; vui lòng thử lại sau ít phút."
    if isinstance(field, str) and field.startswith("photos["):  # photos[2]: the second photo
        return f"Vui lòng kiểm tra ảnh thứ {field[7:-1]}: tệp phải là ảnh ({exc.detail})."
    if field in LABELS:
        return f"Vui lòng kiểm tra mục «{LABELS[field]}» ({exc.detail})."
    return exc.detail


@routes.post(PAGE)
async def send(request: web.Request) -> web.Response:
    """Receive the form: the code and the private link, or the form again with the refusal."""
    try:
        check_rate(request)
        with readable_form():
            fields, photos = await _posted(request)
    except TooManyRequests as exc:
        response = await _form(request, {}, _refusal(exc), status=429)
        response.headers.update(exc.headers)
        return response
    except HttpProblem:
        return await _form(request, {}, _UNREADABLE, status=400)
    given = {k: v for k, v in fields.items() if isinstance(v, str)}
    for code, value in fields.get("attributes", {}).items():
        if isinstance(value, str):
            given[f"attributes[{fields.get('category', '')}][{code}]"] = value
    if len(photos) > MAX_PHOTOS:
        return await _form(
            request, given, f"Ảnh: chỉ gửi được tối đa {MAX_PHOTOS} ảnh.", status=400
        )
    try:
        submission = read_submission(fields, photos=photos, channel="web")
        received = await submit(services_of(request.app), submission)
    except InvalidFeedback as exc:
        return await _form(request, given, _refusal(exc), status=exc.problem.status)
    finally:
        for photo in photos:
            photo.close()
    code = received.feedback.code
    link = private_link(request, code, received.token)
    zone = services_of(request.app).zone
    body = f"""
<h1>Đã nhận phản ánh</h1>
<p>Mã phản ánh của bạn: <span class="code" id="code">{escape(code)}</span></p>
<p>Đường dẫn riêng để theo dõi tiến độ và đánh giá câu trả lời (hãy lưu lại; chỉ người có
đường dẫn này mới xem được):</p>
<p><a id="private-link" href="{escape(link)}">{escape(link)}</a></p>
<p class="muted">Hạn phân loại: {_local(received.feedback.classify_due, zone)}.
<a href="{PAGE}">Gửi phản ánh khác</a></p>"""
    return _page(request, "Đã nhận phản ánh", body)


def _dl(pairs: list[tuple[str, str, str]]) -> str:
    return "<dl>" + "".join(f'<dt>{t}</dt><dd id="{i}">{v}</dd>' for t, i, v in pairs) + "</dl>"


def _place(place: Mapping[str, Any]) -> str:
    parts = [escape(place.get("address") or "")]
    if place.get("lat") is not None:
        parts.append(f"({place['lat']:.6f}, {place['long']:.6f})")
    return " ".join(p for p in parts if p) or "—"


@routes.get(PUBLISHED)
async def published(request: web.Request) -> web.Response:
    """Published feedback with their answers, newest first, ``PER_PAGE`` a page."""
    after = request.query.get("sau") or None
    zone = services_of(request.app).zone
    async with request.app[DATABASE].reader() as tx:
        repo = FeedbackRepo(tx)
        rows = await repo.published(after, PER_PAGE + 1)
        categories = {c.code: c.name for c in await CategoryRepo(tx).all()}
        agencies = AgencyRepo(tx)
        items = []
        for row in rows[:PER_PAGE]:
            agency = await agencies.get(row.agency)
            name = agency.name if agency is not None else row.agency
            photos = await repo.photos(row.code)
            view = public_view(row, categories.get(row.category, row.category), name, photos, zone)
            items.append(view)
    articles = []
    for v in items:
        code = escape(v["code"])
        images = "".join(
            f'<img src="/phan-anh/anh/{quote(v["code"])}/{n}" alt="Ảnh {n} của phản ánh {code}"'
            ' loading="lazy">'
            for n in v["photos"]
        )
        details = _dl(
            [
                ("Mã", f"code-{code}", code),
                ("Lĩnh vực", f"category-{code}", escape(v["category"]["name"])),
                ("Cơ quan trả lời", f"agency-{code}", escape(v["agency"]["name"])),
                ("Người gửi", f"sender-{code}", escape(v["sender_name"])),
                ("Địa điểm", f"place-{code}", _place(v["place"])),
                ("Ngày gửi", f"received-{code}", _local(v["received_at"], zone)),
                ("Ngày trả lời", f"answered-{code}", _local(v["answered_at"], zone)),
            ]
        )
        articles.append(
            f'<article id="fb-{code}"><h2>{escape(v["title"])}</h2>{details}'
            f'<p class="content">{escape(v["content"])}</p>{images}'
            f'<h3>Trả lời</h3><p class="answer">{escape(v["answer"])}</p></article>'
        )
    more = ""
    if len(rows) > PER_PAGE:
        after_last = quote(rows[PER_PAGE - 1].code)
        more = f'<p><a id="more" href="{PUBLISHED}?sau={after_last}">Xem thêm</a></p>'
    listing = "".join(articles) or '<p id="empty">Chưa có phản ánh nào được công khai.</p>'
    body = (
        f'<h1>Phản ánh, kiến nghị đã trả lời</h1><p class="muted"><a href="{PAGE}">Gửi phản ánh'
        f"</a></p>{listing}{more}"
    )
    return _page(request, "Phản ánh đã trả lời", body)


@routes.get("/phan-anh/anh/" + _CODE + "/{n}")
async def public_photo(request: web.Request) -> web.Response:
    """A photo an officer approved, of a published feedback that is not hidden."""
    code = request.match_info["code"]
    try:
        n = photo_number(request)
        async with request.app[DATABASE].reader() as tx:
            repo = FeedbackRepo(tx)
            row = await repo.get(code)
            photos = {p.n: p for p in await repo.photos(code)} if row is not None else {}
    except FeedbackNotFound:
        raise web.HTTPNotFound(reason="No such photo") from None
    shown = row is not None and row.published_at is not None and not row.hidden
    if not shown or n not in photos or not photos[n].approved:
        raise web.HTTPNotFound(reason="No such photo")
    return await photo_response(request, photos[n].sha256, photos[n].content_type)


async def _private(request: web.Request, code: str, token: str, note: str = "") -> web.Response:
    zone = services_of(request.app).zone
    try:
        row = await by_token(request.app[DATABASE], code, token)
    except FeedbackNotFound:
        body = (
            '<h1>Không tìm thấy phản ánh</h1><p id="error" class="error">Mã hoặc đường dẫn '
            f'riêng không đúng.</p><p><a href="{PAGE}">Gửi phản ánh</a></p>'
        )
        return _page(request, "Không tìm thấy", body, status=404)
    async with request.app[DATABASE].reader() as tx:
        events = await FeedbackRepo(tx).events(code)
    v = private_view(row, events, zone)
    steps = "".join(
        f"<tr><td>{escape(s['status_label'])}</td><td>{_local(s['at'], zone)}</td>"
        f"<td>{escape(s['note'])}</td></tr>"
        for s in v["steps"]
    )
    due = v["due"]
    answer = (
        f'<h2>Câu trả lời</h2><p class="answer" id="answer">{escape(v["answer"])}</p>'
        if v["answer"]
        else '<p id="answer" class="muted">Chưa có câu trả lời.</p>'
    )
    if v["may_rate"]:
        choices = "".join(
            f'<button type="submit" name="rating" value="{key}" id="rate-{key}">{label}</button> '
            for key, label in RATINGS.items()
        )
        rating = (
            f'<form method="post" action="/phan-anh/{quote(code)}"><h2>Bạn có hài lòng với câu '
            f'trả lời?</h2><input type="hidden" name="token" value="{escape(token)}">{choices}'
            "</form>"
        )
    elif v["rating"]:
        rating = f'<p id="rating">Bạn đã đánh giá: <b>{escape(RATINGS[v["rating"]])}</b></p>'
    else:
        rating = ""
    alert = f'<p class="error" id="error" role="alert">{escape(note)}</p>' if note else ""
    details = _dl(
        [
            ("Mã phản ánh", "r-code", escape(v["code"])),
            ("Tình trạng", "status-label", f"<b>{escape(v['status_label'])}</b>"),
            ("Tiêu đề", "r-title", escape(v["title"])),
            ("Địa điểm", "r-place", _place(v["place"])),
            ("Ngày gửi", "r-received", _local(v["received_at"], zone)),
            ("Hạn trả lời", "r-due", _local(due["answer"], zone)),
        ]
    )
    body = (
        f"<h1>Theo dõi phản ánh</h1>{alert}{details}"
        f'<p class="content">{escape(v["content"])}</p>'
        f'<h2>Tiến độ</h2><table id="steps"><tbody>{steps}</tbody></table>{answer}{rating}'
    )
    return _page(request, "Theo dõi phản ánh", body)


@routes.get("/phan-anh/" + _CODE)
async def private_page(request: web.Request) -> web.Response:
    """The sender's private page."""
    return await _private(request, request.match_info["code"], request.query.get("token", ""))


@routes.post("/phan-anh/" + _CODE)
async def rate_answer(request: web.Request) -> web.Response:
    """Rate the answer once; back to the private page (303), or the page with the refusal."""
    code = request.match_info["code"]
    try:
        with readable_form():
            posted = await request.post()
    except HttpProblem:
        body = f'<h1>Không đọc được</h1><p class="error" id="error">{_UNREADABLE}</p>'
        return _page(request, "Không đọc được", body, status=400)
    token, rating = str(posted.get("token", "")), str(posted.get("rating", ""))
    try:
        await rate(request.app[DATABASE], code, token, rating)
    except FeedbackNotFound:
        return await _private(request, code, token)
    except DomainError as exc:
        return await _private(request, code, token, _refusal(exc))
    raise web.HTTPSeeOther(f"/phan-anh/{quote(code)}?token={quote(token, safe='')}")


def setup(app: web.Application) -> None:
    """Register the pages (after server/http/feedback.py, whose budget and services they use)."""
    app.router.add_routes(routes)
