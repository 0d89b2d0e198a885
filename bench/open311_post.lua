-- wrk script of bench/open311_bench.py: POST /open311/v2/requests.json, form-encoded UTF-8, as
-- an Open311 app does, with the key in OPEN311_KEY and the service in OPEN311_SERVICE; each
-- request its own description. done() prints one line `WRK_JSON {...}` (wrk_report.lua).

local key = os.getenv("OPEN311_KEY")
local service = os.getenv("OPEN311_SERVICE")

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_report.lua")

function init(args)
  statuses = {}
  counter = 0
end

function request()
  counter = counter + 1
  local body = "api_key=" .. key .. "&service_code=" .. service
    .. "&lat=18.6796&long=105.6813&address_string=12+L%C3%AA+L%E1%BB%A3i%2C+Vinh"
    .. "&first_name=An&last_name=Nguy%E1%BB%85n&phone=0912345678"
    .. "&description=%E1%BB%94+g%C3%A0+s%E1%BB%91+" .. tid .. "-" .. counter
  return wrk.format("POST", "/open311/v2/requests.json", {
    ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8",
  }, body)
end
