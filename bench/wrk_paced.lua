-- Open-loop-like load from wrk: every connection waits a random think time (uniform, mean given
-- in milliseconds as the script's argument) before each request, so N kept-alive connections
-- offer about N / mean requests a second whatever the answers' speed; people with think time,
-- not a flood. Counts the answers by status like wrk_status.lua.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  mean_ms = tonumber(args[1]) or 1000
  ok, shed, other = 0, 0, 0
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function delay()
  return math.random(0, math.floor(2 * mean_ms))
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
