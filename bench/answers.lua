-- wrk script of the answer throughput (bench/answers.py runs it):
--
--   wrk -s bench/answers.lua URL -- PREFIX TOKENS_FILE CSRF THREADS
--
-- Each request POSTs one line of TOKENS_FILE ("token<TAB>score=…&comment=…") to
-- PREFIX<token>/, with the CSRF secret as cookie and form field; each thread takes
-- every THREADS-th line, so no invitation is answered twice. A thread that has used
-- its lines up asks for a page that does not exist, so that is counted as an error
-- and never as an answer. `done` prints one line: BENCH_RESULT {json}.

local threads = {}

function setup(thread)
   thread:set("thread_number", #threads)
   table.insert(threads, thread)
end

function init(args)
   local prefix, path, csrf = args[1], args[2], args[3]
   local thread_count = tonumber(args[4])
   local headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Cookie"] = "csrftoken=" .. csrf,
   }
   queue = {}
   local line_number = 0
   for line in io.lines(path) do
      if line_number % thread_count == thread_number then
         local token, body = line:match("^([^\t]+)\t(.*)$")
         table.insert(queue, wrk.format(
            "POST", prefix .. token .. "/", headers,
            body .. "&csrfmiddlewaretoken=" .. csrf))
      end
      line_number = line_number + 1
   end
   spent = wrk.format("POST", "/bench-tokens-spent/", headers, "")
   position = 0
   exhausted = 0
   redirects = 0
   others = 0
   statuses = ""
   counts = {}
end

function request()
   position = position + 1
   local next_request = queue[position]
   if next_request == nil then
      exhausted = exhausted + 1
      return spent
   end
   return next_request
end

function response(status, headers, body)
   if status == 302 then
      redirects = redirects + 1
   else
      others = others + 1
      counts[status] = (counts[status] or 0) + 1
      local parts = {}
      for code, n in pairs(counts) do
         table.insert(parts, string.format('"%d": %d', code, n))
      end
      statuses = table.concat(parts, ", ")
   end
end

function done(summary, latency, requests)
   local total = {redirects = 0, others = 0, exhausted = 0}
   local status_parts = {}
   for _, thread in ipairs(threads) do
      for name, _ in pairs(total) do
         total[name] = total[name] + thread:get(name)
      end
      local s = thread:get("statuses")
      if s ~= "" then
         table.insert(status_parts, "{" .. s .. "}")
      end
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "redirects": %d, ' ..
      '"others": %d, "exhausted": %d, "statuses": [%s], ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, ' ..
      '"timeout": %d}, "latency_us": {"p50": %d, "p90": %d, "p99": %d, ' ..
      '"max": %d, "mean": %.1f}}\n',
      summary.requests, summary.duration, total.redirects, total.others,
      total.exhausted, table.concat(status_parts, ", "),
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
