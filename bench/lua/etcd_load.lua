-- The load of bench/catch-up-etcd.sh through etcd's v3 JSON gateway: each of KEYS keys put
-- once (one wrk thread, so one counter), values of VALUE bytes; when every put is answered (or
-- none has been for 15 s) it writes the file MARK and stops, and its counts go to STATS.
local base64 = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "base64.lua")
local keys, size = tonumber(os.getenv("KEYS")), tonumber(os.getenv("VALUE"))
local mark, stats = os.getenv("MARK"), os.getenv("STATS")
-- A value is "%011d:" (12 bytes, a multiple of 3: its base64 joins the rest's) and size - 12 "v"s.
local tail = base64(string.rep("v", size - 12))
local headers = { ["Content-Type"] = "application/json" }
-- Once every key is sent, connections idle with a request etcd answers 404 without raft (made
-- on first use: wrk.headers has no Host yet while the script loads).
local idle = nil
issued, ok, failed, finished, fails = 0, 0, 0, false, {}
local verified = false
local last_ok = os.time()
local threads = {}
setup = function(thread) table.insert(threads, thread) end
delay = function() if issued < keys then return 0 end return 200 end
local function put(i)
  return wrk.format("POST", "/v3/kv/put", headers, '{"key":"' .. base64("bench-" .. i) .. '","value":"'
    .. base64(string.format("%011d:", i)) .. tail .. '"}')
end
request = function()
  -- wrk calls request() once to check the script before it sends anything: not a key.
  if not verified then verified = true; return put(0) end
  if issued >= keys then
    idle = idle or wrk.format("GET", "/catch-up-etcd-idle")
    return idle
  end
  issued = issued + 1
  return put(issued - 1)
end
response = function(status, headers, body)
  if status == 200 then
    ok, last_ok = ok + 1, os.time()
  elseif status ~= 404 then
    failed = failed + 1
    if #fails < 3 then table.insert(fails, status .. " " .. body:sub(1, 200)) end
  end
  if not finished and issued >= keys and (ok + failed >= keys or os.time() - last_ok > 15) then
    finished = true
    local f = io.open(mark, "w"); f:write(ok, " ", failed, "\n"); f:close()
    if wrk.thread then wrk.thread:stop() end
  end
end
done = function(summary)
  local t = threads[1]
  local f = io.open(stats, "w")
  f:write(t:get("issued"), " ", t:get("ok"), " ", t:get("failed"), " ", summary.duration / 1e6, "\n")
  f:close()
  f = io.open(stats .. ".failures", "w")
  for _, line in ipairs(t:get("fails")) do f:write(line:gsub("\n", " "), "\n") end
  f:close()
end
