-- wrk script of bench/dossier_bench.py: GET requests for one agency, rotating over the paths
-- listed one a line in DOSSIER_PATHS (a file), with DOSSIER_TOKEN as bearer token.
-- done() prints one line `WRK_JSON {...}` like dossier_intake.lua.

local paths = {}
for line in io.lines(os.getenv("DOSSIER_PATHS")) do
  if line ~= "" then paths[#paths + 1] = line end
end
local token = os.getenv("DOSSIER_TOKEN")

-- setup(), response() and done(): bench/wrk_report.lua, beside this script.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_report.lua")

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
