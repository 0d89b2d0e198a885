-- wrk script of bench/send_profile.py: every request sends the same small edXML package
-- (SEND_PACKAGE, a file) under a new DocumentId (SEND_RUN + thread + counter replacing the
-- placeholder @@DOCUMENT-ID@@), as G22 with SEND_TOKEN.
-- done() prints one line `WRK_JSON {...}` (bench/wrk_report.lua).

local run = os.getenv("SEND_RUN") or "run"
local token = os.getenv("SEND_TOKEN") or ""
local handle = assert(io.open(os.getenv("SEND_PACKAGE"), "rb"))
local template = handle:read("*a")
handle:close()
local head, tail = template:match("^(.-)@@DOCUMENT%-ID@@(.*)$")

-- setup(), response() and done(): bench/wrk_report.lua, beside this script.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_report.lua")

local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/xml" }

function init(args)
  statuses = {}
  sent = 0
  prefix = head .. run .. "-" .. tid .. "-"
end

function request()
  sent = sent + 1
  return wrk.format("POST", "/api/v1/documents", headers, prefix .. sent .. tail)
end
