-- etcd v3 gateway under the soak's load (bench/soak-etcd.sh): half puts of 1 KB values, half
-- linearizable ranges, keys drawn uniformly from KEYS (env, default 1000000).
local base64 = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "base64.lua")
local keys = tonumber(os.getenv("KEYS") or "1000000")
local value = base64(string.rep("v", 1024))
local headers = { ["Content-Type"] = "application/json" }
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
request = function()
  local key = base64("bench-" .. math.random(0, keys - 1))
  if math.random() < 0.5 then
    return wrk.format("POST", "/v3/kv/put", headers, '{"key":"' .. key .. '","value":"' .. value .. '"}')
  end
  return wrk.format("POST", "/v3/kv/range", headers, '{"key":"' .. key .. '"}')
end

-- Throughput over time, as bench/soak.sh reports hakv's: answers per 10 s window, appended to
-- the file WINDOWS (env) as each window ends ("<window number> <answers>").
local windows_file = os.getenv("WINDOWS")
local started, window, answered = os.time(), 0, 0
response = function()
  local now = math.floor((os.time() - started) / 10)
  if now ~= window then
    if windows_file then
      local f = io.open(windows_file, "a")
      f:write(window, " ", answered, "\n")
      f:close()
    end
    window, answered = now, 0
  end
  answered = answered + 1
end
