-- GET the stored decisions of users u-0 .. u-<users-1> in turn, as a viewer.
-- Usage: wrk ... -s scripts/wrk/user-decisions.lua URL -- <users>
-- The X-Api-Key is the viewer key scripts/bench-read-flood configures (SENTINEL_AUTH_API_KEYS).
local users, n = 50, 0
function init(args)
  users = tonumber(args[1] or "50")
end
function request()
  n = n + 1
  return wrk.format("GET", "/v1/users/u-" .. (n % users) .. "/decisions", {["X-Api-Key"] = "bench-viewer-key-local-only-0001"})
end
