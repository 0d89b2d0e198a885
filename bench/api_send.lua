-- wrk script of bench/api_send_bench.py: every request POSTs one package with a new id.
--
-- SEND_TEMPLATE names a file holding the package with the placeholder @@DOCUMENT-ID@@ once
-- (a document's DocumentId, or a word of a status message's Description: the axis keys both
-- on them); each request replaces it with SEND_RUN-<thread>-<counter>, so no two requests of
-- a run carry the same bytes. SEND_PATH is the route (default /api/v1/documents), SEND_TOKEN
-- the bearer token (none: the bare handler).
-- done() prints one line `WRK_JSON {...}` (bench/wrk_report.lua).

local placeholder = "@@DOCUMENT-ID@@"
local run = os.getenv("SEND_RUN") or "run"
local path = os.getenv("SEND_PATH") or "/api/v1/documents"
local token = os.getenv("SEND_TOKEN") or ""

-- setup(), response() and done(): bench/wrk_report.lua, beside this script.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_report.lua")

function init(args)
  statuses = {}
  counter = 0
  local file = assert(io.open(os.getenv("SEND_TEMPLATE"), "rb"))
  local template = file:read("*a")
  file:close()
  local at, stop = template:find(placeholder, 1, true)
  assert(at, "the template has no " .. placeholder)
  head, tail = template:sub(1, at - 1), template:sub(stop + 1)
  headers = { ["Content-Type"] = "application/xml" }
  if token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  counter = counter + 1
  local body = head .. string.format("%s-%d-%09d", run, tid, counter) .. tail
  return wrk.format("POST", path, headers, body)
end
