-- wrk script of bench/dossier_bench.py: every request is a new dossier intake.
--
-- POST /api/v1/dossiers as multipart/form-data: a JSON part `dossier` (procedure 1.001193,
-- a made-up citizen, counter or online channel) and the two required files TK and GCS.
-- The token rotates over DOSSIER_TOKENS (comma-separated: the receiving units), every request
-- has its own Idempotency-Key (DOSSIER_RUN + thread + counter) and its own applicant.
-- done() prints one line `WRK_JSON {...}`: requests, duration, latency percentiles (us),
-- the answers by HTTP status and wrk's socket errors.

local tokens = {}
for t in string.gmatch(os.getenv("DOSSIER_TOKENS") or "", "[^,]+") do
  tokens[#tokens + 1] = t
end
local run = os.getenv("DOSSIER_RUN") or "run"
local file_bytes = tonumber(os.getenv("DOSSIER_FILE_BYTES") or "4096")
local boundary = "lienthong-bench-16-boundary"

-- setup(), response() and done(): bench/wrk_report.lua, beside this script.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_report.lua")

function init(args)
  statuses = {}
  counter = 0
  math.randomseed(os.time() * 100 + tid)
  filler = string.rep("%PDF-1.7 bench page ", math.ceil(file_bytes / 20)):sub(1, file_bytes)
end

local function part_file(name, filename)
  return "--" .. boundary .. "\r\n"
    .. 'Content-Disposition: form-data; name="' .. name .. '"; filename="' .. filename .. '"\r\n'
    .. "Content-Type: application/pdf\r\n\r\n" .. filler .. "\r\n"
end

function request()
  counter = counter + 1
  local token = tokens[((counter * 7 + tid) % #tokens) + 1]
  local key = string.format("%s-%d-%d", run, tid, counter)
  local dossier = string.format(
    '{"procedure":"1.001193","channel":%d,"applicant":{"name":"Nguyễn Văn Bench %d %d",'
      .. '"id_number":"0%011d","phone":"09%08d","address":"Xóm %d, xã Kim Liên"}}',
    (counter % 4 == 0) and 2 or 1, tid, counter, math.random(0, 99999999999),
    math.random(0, 99999999), counter % 20)
  local body = "--" .. boundary .. "\r\n"
    .. 'Content-Disposition: form-data; name="dossier"\r\n'
    .. "Content-Type: application/json\r\n\r\n" .. dossier .. "\r\n"
    .. part_file("TK", "to-khai.pdf") .. part_file("GCS", "giay-chung-sinh.pdf")
    .. "--" .. boundary .. "--\r\n"
  return wrk.format("POST", "/api/v1/dossiers", {
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = key,
    ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
  }, body)
end
