-- POST a full event (card, device, IP, merchant, location) with a unique transaction id per
-- request; users cycle through a pool. With a third argument `idempotent`, the event has no
-- transaction id and goes under an Idempotency-Key unique per request instead (the README's
-- safe-retry path: the node derives the id from the key).
-- Usage: wrk ... -s scripts/wrk/full-event.lua URL -- <run-tag> <users> [idempotent]
-- The X-Api-Key is the ingest key scripts/bench configures (SENTINEL_AUTH_API_KEYS), or
-- BENCH_API_KEY when set (say, a key created with POST /v1/keys).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local prefix, users, idempotent, n = "", 10000, false, 0
local api_key = os.getenv("BENCH_API_KEY") or "bench-ingest-key-local-only-0001"
function init(args)
  prefix = "wrk-" .. (args[1] or tostring(os.time())) .. "-" .. tid .. "-"
  users = tonumber(args[2] or "10000")
  idempotent = args[3] == "idempotent"
end
function request()
  n = n + 1
  local u = n % users
  local id = idempotent and "" or string.format('"transaction_id":"%s%d",', prefix, n)
  local body = string.format('{%s"user_id":"u-%d","amount":"%d.%02d","currency":"USD","merchant_id":"m-%d","merchant_category":"5411","card_id":"c-%d","device_id":"d-%d","ip":"10.%d.%d.%d","channel":"web","location":{"lat":%d.5,"lon":%d.25,"country":"US"}}',
    id, u, 5 + n % 200, n % 100, n % 500, u, u, u % 250, math.floor(u / 250) % 250, tid, 30 + u % 10, -90 - u % 10)
  local headers = {["Content-Type"] = "application/json", ["X-Api-Key"] = api_key}
  if idempotent then headers["Idempotency-Key"] = prefix .. n end
  return wrk.format("POST", "/v1/transactions", headers, body)
end
