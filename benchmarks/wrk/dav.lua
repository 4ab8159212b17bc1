-- Generic WebDAV request generator (from the peers kit, ../shared/peers/wrk/dav.lua) for wrk 4.x (LuaJIT), driven by load.py.
--
--   wrk -t1 -cC -dDs --timeout 30s -s wrk/dav.lua URL -- METHOD PATH DEPTH BODYFILE MODE MAXREQ [AUTH]
--
--   METHOD    PUT | PROPPATCH | PROPFIND | GET ...
--   PATH      request path; in MODE "unique" a format string with two %d
--             (thread number, request counter), e.g. /dav/x/put-1/f-%d-%d.bin
--   DEPTH     value of the Depth header, or "-" for none
--   BODYFILE  file whose bytes are the request body, or "-" for none
--   MODE      static : the same request every time (prebuilt once)
--             unique : PATH formatted with a fresh counter per request
--             vary   : "@N@" in the body replaced by the counter per request
--   MAXREQ    stop the thread after this many responses (0 = no cap); the
--             run is then bounded by both -d and MAXREQ
--
-- done() prints one line "WRKJSON {...}" with status-code counts, socket
-- errors, latency percentiles (microseconds, from wrk's own histogram) and
-- requests/second measured between the first request and the last response
-- (wrk's own req/s divides by the full -d even when MAXREQ stopped early).
-- Use -t1: per-thread tables are merged in done(), but the request counter
-- is per thread.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  method = args[1]
  path_t = args[2]
  depth = args[3] or "-"
  bodyfile = args[4] or "-"
  mode = args[5] or "static"
  maxreq = tonumber(args[6] or "0") or 0
  auth = args[7] or "-"
  body = nil
  if bodyfile ~= "-" then
    local f = assert(io.open(bodyfile, "rb"))
    body = f:read("*a")
    f:close()
  end
  hdrs = {}
  if depth ~= "-" then hdrs["Depth"] = depth end
  if auth ~= "-" then hdrs["Authorization"] = auth end
  if body then
    if method == "PUT" then
      hdrs["Content-Type"] = "application/octet-stream"
    else
      hdrs["Content-Type"] = 'application/xml; charset="utf-8"'
    end
  end
  n = 0
  responses = 0
  statuses = {}
  t_first = 0
  t_last = 0
  if mode == "static" then
    req = wrk.format(method, path_t, hdrs, body)
  end
end

function request()
  n = n + 1
  if n == 1 then t_first = now_us() end
  if mode == "unique" then
    return wrk.format(method, string.format(path_t, tid, n), hdrs, body)
  elseif mode == "vary" then
    return wrk.format(method, path_t, hdrs, (string.gsub(body, "@N@", tostring(n))))
  end
  return req
end

function response(status, headers, body)
  responses = responses + 1
  t_last = now_us()
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
  if maxreq > 0 and responses >= maxreq then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local st = {}
  local total, t0, t1 = 0, nil, 0
  for _, t in ipairs(threads) do
    local s = t:get("statuses") or {}
    for k, v in pairs(s) do st[k] = (st[k] or 0) + v end
    total = total + (t:get("responses") or 0)
    local f, l = t:get("t_first") or 0, t:get("t_last") or 0
    if f > 0 and (t0 == nil or f < t0) then t0 = f end
    if l > t1 then t1 = l end
  end
  local parts = {}
  for k, v in pairs(st) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  local active_s = (t0 and t1 > t0) and (t1 - t0) / 1e6 or 0
  local pct = {}
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    table.insert(pct, string.format('"%s":%d', tostring(p), latency:percentile(p)))
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"responses":%d,"duration_us":%d,"active_s":%.6f,' ..
    '"rps_active":%.3f,"bytes":%d,"statuses":{%s},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"p":{%s}}}\n',
    summary.requests, total, summary.duration, active_s,
    active_s > 0 and total / active_s or 0, summary.bytes, table.concat(parts, ","),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev, table.concat(pct, ",")))
end
