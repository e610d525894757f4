-- wrk reporter for the cluster's rows: like wrk_report.lua, plus the answers split by status
-- (2xx served, 503 shed by the edge, anything else), so a shed request is never counted as
-- throughput. Each wrk thread counts in its own Lua state; done() sums them.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, shed, other = 0, 0, 0
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  elseif status == 503 then
    shed = shed + 1
  else
    other = other + 1
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local ok_total, shed_total, other_total = 0, 0, 0
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    shed_total = shed_total + thread:get("shed")
    other_total = other_total + thread:get("other")
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"ok":%d,"shed":%d,"other":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    ok_total, shed_total, other_total))
end
