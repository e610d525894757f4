-- Open-loop-like load from wrk: every connection waits a random think time (uniform, mean given
-- in milliseconds as the script's argument) before each request, so N kept-alive connections
-- offer about N / mean requests a second whatever the answers' speed; people with think time,
-- not a flood. The answers are counted by status by wrk_status.lua, loaded from this script's
-- own folder (wrk runs the script by its path, so the path is known whatever the working folder).
local folder = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
dofile(folder .. "wrk_status.lua")

local count_init = init

function init(args)
  count_init(args)
  mean_ms = tonumber(args[1]) or 1000
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function delay()
  return math.random(0, math.floor(2 * mean_ms))
end
