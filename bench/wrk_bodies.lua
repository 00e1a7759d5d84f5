-- wrk script: POSTs pre-built bodies from a directory, cycling through them.
-- usage: wrk ... -s bench/wrk_bodies.lua URL -- DIR COUNT CONTENT_TYPE
local bodies = {}
local i = 0
local ctype = "application/x-ndjson"

function init(args)
  local dir, n = args[1], tonumber(args[2])
  ctype = args[3] or ctype
  for k = 0, n - 1 do
    local f = assert(io.open(string.format("%s/b%05d", dir, k), "rb"))
    bodies[#bodies + 1] = f:read("*all")
    f:close()
  end
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, { ["Content-Type"] = ctype }, bodies[i])
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("BENCH requests=%d non2xx=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, non2xx, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
