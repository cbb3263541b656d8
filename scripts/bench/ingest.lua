-- wrk script of scripts/bench.sh: POST /hooks/circleci with pre-generated signed CircleCI
-- job-completed webhooks, one line of the pool per request (so every request has its own `id`).
--
-- POOL=<prefix>: thread k reads <prefix>.k, lines `<hex HMAC-SHA256>\t<body>` (made by
-- `hoist-bench pool`), and starts over at its end (counted: `wrapped` > 0 means duplicates were sent).
-- Every request carries the signature twice: `circleci-signature: v1=<hex>` as CircleCI sends it
-- (Hoist checks it), and `X-Signature: <hex>` for adnanh/webhook, whose payload-hmac-sha256 rule
-- takes a bare hex digest (or `sha256=<hex>`), not CircleCI's `v1=` prefix. Every server gets the
-- same bytes.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("POOL") .. "." .. tid
  pool = assert(io.open(path, "r"))
  sent = 0
  wrapped = 0
  headers = {
    ["Content-Type"] = "application/json",
    ["circleci-event-type"] = "job-completed",
    ["User-Agent"] = "CircleCI-Webhook/1.0",
  }
end

function request()
  local line = pool:read("*l")
  if not line then
    pool:seek("set", 0)
    wrapped = wrapped + 1
    line = pool:read("*l")
  end
  local tab = line:find("\t", 1, true)
  local sig = line:sub(1, tab - 1)
  headers["circleci-signature"] = "v1=" .. sig
  headers["X-Signature"] = sig
  sent = sent + 1
  return wrk.format("POST", "/hooks/circleci", headers, line:sub(tab + 1))
end

function done(summary, latency, requests)
  local wrapped_total = 0
  for _, t in ipairs(threads) do
    wrapped_total = wrapped_total + (t:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d non2xx=%d errors=%d wrapped=%d\n",
    summary.requests,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50),
    latency:percentile(99),
    latency.max,
    e.status,
    e.connect + e.read + e.write + e.timeout,
    wrapped_total))
end
