-- wrk script of bench/feedback_bench.py: every request is a new anonymous citizen feedback.
--
-- POST /api/v1/feedback as JSON (no token): the demo category duong-hu-hong, a made-up
-- citizen, an address and a point, the attribute muc-do; its own Idempotency-Key
-- (FEEDBACK_RUN + thread + counter). done() prints one line `WRK_JSON {...}`.

local run = os.getenv("FEEDBACK_RUN") or "run"

-- setup(), response() and done(): bench/wrk_report.lua, beside this script.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_report.lua")

function init(args)
  statuses = {}
  counter = 0
  math.randomseed(os.time() * 100 + tid)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"category":"duong-hu-hong","title":"Ổ gà số %d","content":"Ổ gà sâu trước nhà số %d,'
      .. ' xe máy dễ ngã.","address":"%d Lê Lợi, Nam Đàn","lat":18.%04d,"long":105.%04d,'
      .. '"name":"Nguyễn Văn %d","phone":"09%08d","attributes":{"muc-do":"cao"}}',
    counter, counter, counter % 200, math.random(0, 9999), math.random(0, 9999), tid,
    math.random(0, 99999999))
  return wrk.format("POST", "/api/v1/feedback", {
    ["Idempotency-Key"] = run .. "-" .. tid .. "-" .. counter,
    ["Content-Type"] = "application/json",
  }, body)
end
