// The dashboard page /bang-dieu-khien (issue 19, docs/dashboard-page.md).
// Runs under the page's CSP: no inline handler, no eval; ECharts draws in SVG, its tooltips as
// rich text (HTML tooltips carry style attributes the CSP refuses).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "lienthong.dashboard.token"; // sessionStorage only: gone with the tab
  const FIGURES = ["exchange", "dossiers", "feedback"];
  // The count columns of each figure drawn per month, and the one the bar chart shows.
  const CHARTED = {
    exchange: { month: ["sent", "received", "without_paper", "signed_valid"], bar: "sent" },
    dossiers: { month: ["received", "finished", "on_time", "late"], bar: "received" },
    feedback: { month: ["received", "answered", "answered_on_time", "satisfied"], bar: "received" },
  };
  // The groupings one figure has alone (server/stats/query.py GROUPS), each a bar chart of one
  // column: the average processing time per procedure (QĐ 766 item 2.2), feedback per category.
  // A click on a bar lists its records (the items route's procedure and category filters).
  const GROUPED = [
    ["dossiers", "procedure", "avg_processing_days"],
    ["feedback", "category", "received"],
  ];
  // The rates the ranking table shows, [figure, column].
  const RANKED = [
    ["exchange", "share_without_paper"],
    ["exchange", "share_signed_valid"],
    ["dossiers", "on_time_rate"],
    ["feedback", "on_time_rate"],
    ["feedback", "satisfaction_rate"],
  ];
  const FIGURE_NAMES = { exchange: "Văn bản", dossiers: "Hồ sơ", feedback: "Phản ánh" };
  const LEVELS = { central: "Trung ương", province: "Tỉnh", district: "Huyện", commune: "Xã" };
  // The drill-down's columns (server/stats/items.py), in Vietnamese; others shown by their key.
  const ITEM_FIELDS = {
    id: "Mã",
    code: "Mã",
    document_id: "Mã văn bản",
    agency: "Cơ quan",
    sender: "Nơi gửi",
    sent_at: "Thời điểm gửi",
    acked_at: "Thời điểm xác nhận",
    first_03_at: "Bắt đầu xử lý",
    procedure: "Thủ tục",
    category: "Lĩnh vực",
    received_at: "Thời điểm tiếp nhận",
    due_at: "Hạn",
    end_at: "Thời điểm kết thúc",
    open_at: "Tính đến",
    supplements: "Số lần bổ sung",
    late: "Trễ hạn",
    answer_due: "Hạn trả lời",
    answered_at: "Thời điểm trả lời",
    rating: "Đánh giá",
    value: "Giá trị",
    bucket: "Khoảng",
    paper: "Bản giấy",
    signed_valid: "Ký số hợp lệ",
    signature_failed: "Chữ ký lỗi",
  };
  const VN_TIME = new Intl.DateTimeFormat("vi-VN", {
    timeZone: "Asia/Ho_Chi_Minh",
    day: "2-digit",
    month: "2-digit",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  });
  const BARS_SHOWN = 20;
  // The ranking shows this many agencies, and as many more at each "Xem thêm": a province's
  // 1,000 rows laid out at once were most of the first render's layout
  // (bench/dashboard_page_bench.py, docs/dashboard-page.md).
  const RANKS_SHOWN = 50;
  const numberFormat = new Intl.NumberFormat("vi-VN");
  const collator = new Intl.Collator("vi"); // (one collator: 1,000 agencies sorted by name)
  const charts = {};
  // This script comes before ECharts in the page, so that the figures are asked while the
  // browser still compiles ECharts; drawing waits for it.
  const scriptsReady = new Promise((resolve) => {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", resolve);
    else resolve();
  });
  const state = { tables: {}, drill: null, ranks: [], ranksShown: RANKS_SHOWN };

  class Unauthorized extends Error {}
  class Refused extends Error {} // 403: the token's role does not reach the path

  async function api(path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const resp = await fetch(path, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      cache: "no-store",
    });
    if (resp.status === 401) throw new Unauthorized();
    const body = await resp.json().catch(() => null);
    if (!resp.ok) {
      const Failure = resp.status === 403 ? Refused : Error;
      throw new Failure((body && (body.detail || body.title)) || `Lỗi ${resp.status}`);
    }
    return body;
  }

  function shown(value, unit) {
    if (value === null || value === undefined) return "—";
    if (unit === "share") return `${(value * 100).toFixed(1).replace(".", ",")} %`;
    if (unit === "seconds") {
      if (value < 120) return `${Math.round(value)} giây`;
      if (value < 7200) return `${Math.round(value / 60)} phút`;
      return `${(value / 3600).toFixed(1).replace(".", ",")} giờ`;
    }
    if (unit === "days") return `${value.toFixed(1).replace(".", ",")} ngày`;
    if (typeof value === "number") return numberFormat.format(value);
    if (typeof value === "boolean") return value ? "có" : "không";
    if (typeof value === "object") {
      return Object.entries(value)
        .map(([k, v]) => `${ITEM_FIELDS[k] || k}: ${shown(v)}`)
        .join("; ");
    }
    const text = String(value);
    // a time with its offset -> dd/mm/yyyy HH:MM in Vietnam time; a date -> dd/mm/yyyy
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}.*(Z|[+-]\d{2}:?\d{2})$/.test(text)) {
      const when = new Date(text);
      if (!Number.isNaN(when.getTime())) return VN_TIME.format(when).replace(",", "");
    }
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
    return m ? `${m[3]}/${m[2]}/${m[1]}` : text;
  }

  // YYYY-MM of the input -> the first or the last day of that month
  function firstDay(month) {
    return `${month}-01`;
  }
  function lastDay(month) {
    const [y, m] = month.split("-").map(Number);
    const day = new Date(Date.UTC(y, m, 0)).getUTCDate();
    return `${month}-${String(day).padStart(2, "0")}`;
  }
  function monthOf(date) {
    return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}`;
  }

  function setDefaultPeriod() {
    // 12 months up to this one, this month's figures so far included (the API's default stops
    // at the last whole month; a dashboard shows what is happening now)
    const now = new Date();
    if (!$("to").value) $("to").value = monthOf(now);
    if (!$("from").value) {
      $("from").value = monthOf(new Date(now.getFullYear(), now.getMonth() - 11, 1));
    }
  }

  function filters() {
    const query = new URLSearchParams({ from: firstDay($("from").value), to: lastDay($("to").value) });
    if ($("level").value) query.set("level", $("level").value);
    if ($("agency").value) query.set("agency", $("agency").value);
    return query;
  }

  function message(text, isError) {
    $("message").textContent = text;
    $("message").className = isError ? "error" : "muted";
  }

  function chart(id) {
    if (!charts[id]) charts[id] = echarts.init($(id), null, { renderer: "svg", locale: "EN" });
    return charts[id];
  }

  function columnsOf(table) {
    return Object.fromEntries(table.columns.map((c) => [c.key, c]));
  }

  function drawMonth(figure, table) {
    const cols = columnsOf(table);
    const keys = CHARTED[figure].month.filter((k) => cols[k]);
    chart(`chart-${figure}-month`).setOption(
      {
        animation: false, // drawn at once: what a screenshot or a printout shows is final
        tooltip: { trigger: "axis", renderMode: "richText" },
        legend: { top: 0 },
        grid: { left: 50, right: 20, top: 40, bottom: 30 },
        xAxis: {
          type: "category",
          data: table.rows.map((r) => r.label),
          axisLabel: { interval: table.rows.length <= 12 ? 0 : "auto", fontSize: 11 },
        },
        yAxis: { type: "value", minInterval: 1 },
        series: keys.map((k) => ({
          name: cols[k].label,
          type: "line",
          id: k,
          data: table.rows.map((r) => r.values[k] ?? null),
        })),
      },
      true,
    );
    onMonthClick(figure, chart(`chart-${figure}-month`), table, keys);
  }

  // A click anywhere in a month's column (not only on a point) opens that month's list of the
  // series clicked, or of the first series.
  function onMonthClick(figure, instance, table, keys) {
    const labels = columnsOf(table);
    instance.off("click");
    let clicked = null;
    instance.on("click", (params) => {
      clicked = params.seriesId;
    });
    const zr = instance.getZr();
    zr.off("click");
    zr.on("click", (event) => {
      const point = [event.offsetX, event.offsetY];
      const series = clicked || keys[0];
      clicked = null;
      if (!instance.containPixel("grid", point)) return;
      const [index] = instance.convertFromPixel({ seriesIndex: 0 }, point);
      const row = table.rows[index];
      if (!row) return;
      openMonthDrill(figure, row, series, labels[series].label).catch(failed);
    });
  }

  // Every column's total over the period (the API's totals), formatted by its unit.
  function drawKpis(figure, table) {
    const tiles = table.columns.map((c) => {
      const tile = document.createElement("div");
      tile.dataset.key = c.key;
      tile.append(cell("dt", c.label), cell("dd", shown(table.totals[c.key], c.unit)));
      return tile;
    });
    $(`kpis-${figure}`).replaceChildren(...tiles);
  }

  function barLabel(groupBy, row) {
    return groupBy === "level" ? LEVELS[row.key] || row.label : row.label;
  }

  // One column of ``table`` as bars, one per row, in chart ``id``; the chart.
  function drawBars(id, table, column) {
    const col = columnsOf(table)[column];
    const instance = chart(id);
    // a province has hundreds of agencies: show BARS_SHOWN at a time, with a slider for the rest
    const many = table.rows.length > BARS_SHOWN;
    instance.setOption(
      {
        animation: false,
        tooltip: { trigger: "item", renderMode: "richText" },
        grid: { left: 50, right: 20, top: 20, bottom: many ? 100 : 70 },
        dataZoom: many ? [{ type: "slider", startValue: 0, endValue: BARS_SHOWN - 1, bottom: 8 }] : [],
        xAxis: {
          type: "category",
          data: table.rows.map((r) => barLabel(table.group_by, r)),
          axisLabel: {
            interval: 0,
            rotate: table.rows.length > 4 ? 25 : 0,
            width: 140,
            overflow: "truncate",
          },
        },
        yAxis: { type: "value", minInterval: col && col.unit === "count" ? 1 : 0 },
        series: [
          {
            name: col ? col.label : column,
            type: "bar",
            id: column,
            data: table.rows.map((r) => r.values[column] ?? null),
            cursor: "pointer", // a click lists what the bar counts
            barMaxWidth: 80,
          },
        ],
      },
      true,
    );
    return instance;
  }

  function drawBar(figure, table) {
    const column = CHARTED[figure].bar;
    const col = columnsOf(table)[column];
    $(`bar-title-${figure}`).textContent =
      (table.group_by === "level" ? "Theo cấp" : "Theo cơ quan") + (col ? ` — ${col.label}` : "");
    drillOnClick(figure, table, column, drawBars(`chart-${figure}-bar`, table, column));
  }

  // A click on a bar lists the records it counts.
  function drillOnClick(figure, table, column, instance) {
    const col = columnsOf(table)[column];
    instance.off("click");
    instance.on("click", (params) => {
      const row = table.rows[params.dataIndex];
      if (!row) return;
      openDrill(figure, table.group_by, row, column, col ? col.label : column).catch(failed);
    });
  }

  function fillAgencies(table) {
    const select = $("agency");
    const chosen = select.value;
    select.replaceChildren(select.options[0]);
    for (const row of table.rows) {
      const option = document.createElement("option");
      option.value = row.key;
      option.textContent = `${row.label} (${row.key})`;
      select.append(option);
    }
    if (table.rows.some((r) => r.key === chosen)) select.value = chosen;
  }

  function rankedLabel(figure, key) {
    const col = columnsOf(state.tables[`${figure}:agency`])[key];
    return `${FIGURE_NAMES[figure]}: ${col ? col.label : key}`;
  }

  function fillRankBy() {
    const select = $("rank-by");
    if (select.options.length) return;
    for (const [figure, key] of RANKED) {
      const option = document.createElement("option");
      option.value = `${figure}:${key}`;
      option.textContent = rankedLabel(figure, key);
      select.append(option);
    }
  }

  function cell(tag, text, className) {
    const el = document.createElement(tag);
    el.textContent = text;
    if (className) el.className = className;
    return el;
  }

  // An agency's rate in the ranking (null: nothing to count, or no row of that figure).
  function rateOf(agency, figure, key) {
    return agency[figure] ? agency[figure][key] ?? null : null;
  }

  function drawRanking() {
    fillRankBy();
    const [rankFigure, rankKey] = $("rank-by").value.split(":");
    const agencies = new Map();
    for (const figure of FIGURES) {
      for (const row of state.tables[`${figure}:agency`].rows) {
        if (!agencies.has(row.key)) agencies.set(row.key, { key: row.key, label: row.label });
        agencies.get(row.key)[figure] = row.values;
      }
    }
    const list = [...agencies.values()].sort((a, b) => {
      const x = rateOf(a, rankFigure, rankKey);
      const y = rateOf(b, rankFigure, rankKey);
      if (x === y) return collator.compare(a.label, b.label);
      if (x === null) return 1;
      if (y === null) return -1;
      return y - x;
    });
    const head = document.createElement("tr");
    head.append(cell("th", "Hạng", "num"), cell("th", "Cơ quan"));
    for (const [figure, key] of RANKED) head.append(cell("th", rankedLabel(figure, key), "num"));
    $("ranking-head").replaceChildren(head);
    let rank = 0;
    let previous;
    state.ranks = list.map((a, i) => {
      const v = rateOf(a, rankFigure, rankKey);
      if (i === 0 || v !== previous) rank = i + 1; // ties share a rank (1, 2, 2, 4)
      previous = v;
      return { agency: a, rank: v === null ? "—" : String(rank) };
    });
    $("ranking-rows").replaceChildren();
    showRanks(state.ranksShown);
  }

  // The ranking's rows up to ``count`` (those already there are kept).
  function showRanks(count) {
    const body = $("ranking-rows");
    state.ranksShown = Math.max(RANKS_SHOWN, count);
    const more = state.ranks.slice(body.children.length, state.ranksShown);
    const rows = more.map(({ agency, rank }) => {
      const tr = document.createElement("tr");
      tr.dataset.agency = agency.key;
      tr.append(cell("td", rank, "num"), cell("td", agency.label));
      for (const [figure, key] of RANKED) {
        tr.append(cell("td", shown(rateOf(agency, figure, key), "share"), "num"));
      }
      return tr;
    });
    body.append(...rows);
    const left = state.ranks.length - body.children.length;
    $("ranking-more").hidden = left <= 0;
    $("ranking-more").textContent = `Xem thêm (còn ${numberFormat.format(left)} cơ quan)`;
  }

  // The stats answers one load needs (3 figures x month, agency and the bars' grouping, and the
  // groupings one figure has alone), asked in parallel; per figure, a promise of its answers as
  // {"figure:group_by": answer}, so that a figure is drawn as soon as its own have come.
  function fetchTables() {
    const base = filters();
    const wanted = {};
    for (const figure of FIGURES) wanted[figure] = new Set(["month", "agency", $("bar-group").value]);
    for (const [figure, groupBy] of GROUPED) wanted[figure].add(groupBy);
    const pending = {};
    for (const figure of FIGURES) {
      const keys = [...wanted[figure]];
      const answers = keys.map((groupBy) => {
        const query = new URLSearchParams(base);
        query.set("group_by", groupBy);
        return api(`/api/v1/stats/${figure}?${query}`);
      });
      pending[figure] = Promise.all(answers).then((got) =>
        Object.fromEntries(keys.map((groupBy, i) => [`${figure}:${groupBy}`, got[i]])),
      );
      pending[figure].catch(() => {}); // (reported once, by whoever awaits it)
    }
    return pending;
  }

  // Draws each figure when its answers have come, while the others' are on their way (one
  // worker answers them one after another: docs/dashboard-page.md, "First render"); then the
  // agency list and the ranking, which need the three.
  async function draw(pending) {
    await scriptsReady; // ECharts, loaded after this script, has run
    const barGroup = $("bar-group").value;
    const tables = {};
    const drawFigure = async (figure) => {
      Object.assign(tables, await pending[figure]);
      drawKpis(figure, tables[`${figure}:month`]);
      drawMonth(figure, tables[`${figure}:month`]);
      drawBar(figure, tables[`${figure}:${barGroup}`]);
      for (const [own, groupBy, column] of GROUPED.filter(([f]) => f === figure)) {
        const table = tables[`${own}:${groupBy}`];
        drillOnClick(own, table, column, drawBars(`chart-${own}-${groupBy}`, table, column));
      }
    };
    await Promise.all(FIGURES.map(drawFigure));
    state.tables = tables;
    if (!$("agency").value && !$("level").value) fillAgencies(tables["exchange:agency"]);
    drawRanking();
    const t = tables["exchange:month"];
    const period = (d) => d.split("-").reverse().join("/");
    message(`Số liệu từ ${period(t.from)} đến ${period(t.to)}.`, false);
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
    performance.mark("dashboard-drawn"); // bench/dashboard_page_bench.py reads the first one
  }

  async function refresh() {
    if (!$("from").value || !$("to").value || $("from").value > $("to").value) {
      message("Chọn khoảng thời gian: tháng bắt đầu không sau tháng kết thúc.", true);
      return;
    }
    message("Đang tải số liệu…", false);
    await draw(fetchTables());
  }

  // A bar: the records it counts, with the filters of the page and the bar's own: per agency
  // the agency alone (scope=own), per level, procedure or category that one.
  async function openDrill(figure, groupBy, row, column, columnLabel) {
    const query = filters();
    query.set("column", column);
    query.set("limit", "50");
    if (groupBy === "agency") {
      query.set("agency", row.key);
      query.set("scope", "own");
    } else {
      query.set(groupBy, row.key);
    }
    await showDrill({ figure, query, next: null }, `${columnLabel} — ${barLabel(groupBy, row)}`);
  }

  // A month of the line chart: the records of one of its columns that month, over the
  // agency filter's subtree and the level filter, as the month's point counts them.
  async function openMonthDrill(figure, row, column, columnLabel) {
    const query = filters();
    query.set("from", firstDay(row.key));
    query.set("to", lastDay(row.key));
    query.set("column", column);
    query.set("limit", "50");
    await showDrill({ figure, query, next: null }, `${columnLabel} — ${row.label}`);
  }

  async function showDrill(drill, title) {
    state.drill = drill;
    $("drill-title").textContent = title;
    $("drill-head").replaceChildren();
    $("drill-rows").replaceChildren();
    $("drill").hidden = false;
    await moreDrill();
    $("drill").scrollIntoView({ block: "nearest" });
  }

  async function moreDrill() {
    const { figure, query, next } = state.drill;
    const q = new URLSearchParams(query);
    if (next) q.set("after", next);
    const page = await api(`/api/v1/stats/${figure}/items?${q}`);
    const items = page.items || [];
    if (!$("drill-head").children.length) {
      // the internal id is left out where the document's own id is there
      const first = items[0] || {};
      const keys = Object.keys(first).filter((k) => !(k === "id" && "document_id" in first));
      const tr = document.createElement("tr");
      for (const k of keys) tr.append(cell("th", ITEM_FIELDS[k] || k));
      $("drill-head").replaceChildren(tr);
      state.drill.keys = keys;
    }
    const keys = state.drill.keys || [];
    for (const item of items) {
      const tr = document.createElement("tr");
      for (const k of keys) tr.append(cell("td", shown(item[k])));
      $("drill-rows").append(tr);
    }
    if (!items.length && !next) {
      const tr = document.createElement("tr");
      tr.append(cell("td", "Không có mục nào."));
      $("drill-rows").append(tr);
    }
    state.drill.next = page.next || null;
    $("drill-more").hidden = !state.drill.next;
  }

  // The figure's table as the bar charts group it, as the API's CSV (UTF-8 with BOM: Excel
  // reads Vietnamese), saved under the API's file name. Fetched with the token, so not a link.
  async function downloadCsv(figure) {
    const query = filters();
    query.set("group_by", $("bar-group").value);
    query.set("format", "csv");
    const resp = await fetch(`/api/v1/stats/${figure}?${query}`, {
      headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` },
      cache: "no-store",
    });
    if (resp.status === 401) throw new Unauthorized();
    if (!resp.ok) throw new Error(`Lỗi ${resp.status}`);
    const named = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") || "");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await resp.blob());
    link.download = named ? named[1] : `thong-ke-${figure}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  function failed(error) {
    if (error instanceof Unauthorized) {
      logout("Mã truy cập không hợp lệ hoặc đã bị thu hồi. Vui lòng đăng nhập lại.");
    } else if ($("board").hidden) {
      sessionStorage.removeItem(TOKEN_KEY);
      $("login-msg").textContent = `Không đăng nhập được: ${error.message}`;
    } else {
      message(`Không tải được số liệu: ${error.message}`, true);
    }
  }

  function logout(reason) {
    sessionStorage.removeItem(TOKEN_KEY);
    for (const id of Object.keys(charts)) {
      charts[id].dispose();
      delete charts[id];
    }
    // the next token may be another agency's: nothing of this one's choices stays
    $("filters").reset();
    $("agency").replaceChildren($("agency").options[0]);
    $("drill").hidden = true;
    state.ranksShown = RANKS_SHOWN;
    $("board").hidden = true;
    $("login").hidden = false;
    $("login-msg").textContent = reason || "";
  }

  async function enter() {
    // who the token is and the figures are asked at once (the first render is their slower)
    setDefaultPeriod();
    const pending = fetchTables(); // (a refused token is reported once, by /api/v1/me below)
    let who;
    try {
      const me = await api("/api/v1/me");
      who = me.name ? `${me.name} (${me.organ_id})` : me.organ_id;
    } catch (error) {
      // an admin token reads the figures of every agency but not /api/v1/me
      if (!(error instanceof Refused)) throw error;
      await Promise.all(Object.values(pending)); // the figures answered it: a stats token
      who = "Quản trị viên (mọi cơ quan)";
    }
    $("who").textContent = who;
    $("login").hidden = true;
    $("board").hidden = false; // before drawing: ECharts sizes a chart by its visible box
    message("Đang tải số liệu…", false);
    await draw(pending);
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("login-msg").textContent = "";
    enter().catch(failed);
  });
  $("logout").addEventListener("click", () => logout(""));
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    refresh().catch(failed);
  });
  $("rank-by").addEventListener("change", drawRanking);
  $("ranking-more").addEventListener("click", () => showRanks(state.ranksShown + RANKS_SHOWN));
  for (const button of document.querySelectorAll("button.csv")) {
    button.addEventListener("click", () => downloadCsv(button.dataset.figure).catch(failed));
  }
  $("drill-more").addEventListener("click", () => moreDrill().catch(failed));
  $("drill-close").addEventListener("click", () => {
    $("drill").hidden = true;
  });
  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));

  if (sessionStorage.getItem(TOKEN_KEY)) enter().catch(failed);
})();
