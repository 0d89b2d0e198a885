-- wrk script of bench/dossier_bench.py: GET requests for one agency, rotating over the paths
-- listed one a line in DOSSIER_PATHS (a file), with DOSSIER_TOKEN as bearer token.
-- done() prints one line `WRK_JSON {...}` like dossier_intake.lua.

local paths = {}
for line in io.lines(os.getenv("DOSSIER_PATHS")) do
  if line ~= "" then paths[#paths + 1] = line end
end
local token = os.getenv("DOSSIER_TOKEN")

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  counter = tid
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1], {
    ["Authorization"] = "Bearer " .. token,
  })
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    parts[#parts + 1] = string.format('"%d":%d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"statuses":{%s},"errors":{"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, table.concat(parts, ","), e.connect, e.read, e.write,
    e.status, e.timeout))
end
