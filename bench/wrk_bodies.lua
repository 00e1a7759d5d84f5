-- wrk script: POSTs pre-built bodies from a directory, cycling through them.
-- usage: wrk ... -s bench/wrk_bodies.lua URL -- DIR COUNT CONTENT_TYPE ["Name: value" ...]
-- Arguments after CONTENT_TYPE are extra request headers. WRK_FIRST=K (env)
-- starts at body K instead of 0, so a second run can send bodies not sent yet.
local bodies = {}
local i = 0
local headers = { ["Content-Type"] = "application/x-ndjson" }

function init(args)
  local dir, n = args[1], tonumber(args[2])
  headers["Content-Type"] = args[3] or headers["Content-Type"]
  for k = 4, #args do
    local name, value = string.match(args[k], "^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  for k = 0, n - 1 do
    local f = assert(io.open(string.format("%s/b%05d", dir, k), "rb"))
    bodies[#bodies + 1] = f:read("*all")
    f:close()
  end
  i = (tonumber(os.getenv("WRK_FIRST") or "0") or 0) % #bodies
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, headers, bodies[i])
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  local e = summary.errors
  io.write(string.format("BENCH requests=%d non2xx=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f sockerr=%d\n",
    summary.requests, non2xx, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout))
end
