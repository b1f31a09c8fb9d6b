"""Drive an HTTP endpoint with wrk (C, epoll) and a Lua script, so the load generator is not the
bottleneck it measures.

Bodies are generated in Python and cycled by the script (no per-request work in Lua beyond
picking the next one). wrk measures the maximum rate at a fixed concurrency; ``delay_ms``
makes each connection wait between a response and its next request, which only approximates a
rate (it moves with the server's latency) and times requests from when they were sent: fixed-rate
figures come from ``bench.paced`` instead, which holds its schedule and times each request from
when it was due.

``key_header`` gives every request a header of that name with a value no other request of the
run has (``<prefix>-<thread>-<n>``), as a client sending one ``Idempotency-Key`` per logical
request does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

LUA_TEMPLATE = r"""
local bodies = {}
local count = 0
local index = 0
local path = "%(path)s"
local method = "%(method)s"
local headers = %(headers)s
local delay_ms = %(delay_ms)s
local result_file = "%(result)s"
local key_header = %(key_header)s
local key_prefix = "%(key_prefix)s"
local sent = 0
local threads = 0

setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

init = function(args)
  for line in io.lines("%(bodies)s") do
    count = count + 1
    bodies[count] = line
  end
  index = math.random(count)
end

request = function()
  index = index + 1
  if index > count then index = 1 end
  if key_header then
    sent = sent + 1
    headers[key_header] = key_prefix .. "-" .. tostring(tid) .. "-" .. sent
  end
  return wrk.format(method, path, headers, bodies[index])
end

if delay_ms > 0 then
  delay = function() return delay_ms end
end

done = function(summary, latency, requests)
  local f = io.open(result_file, "w")
  f:write(string.format(
    '{"requests": %%d, "duration_us": %%d, "connect_errors": %%d, "read_errors": %%d, ' ..
    '"write_errors": %%d, "timeouts": %%d, "status_errors": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "p999_us": %%d, "max_us": %%d}',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
  f:close()
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float

    @property
    def rate(self) -> float:
        """Successful (2xx) requests per second."""
        return max(self.requests - self.errors, 0) / self.seconds


def lua_table(headers: dict[str, str]) -> str:
    items = ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())
    return "{" + items + "}"


def run_wrk(
    url: str,
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    delay_ms: int = 0,
    method: str = "POST",
    key_header: str | None = None,
) -> WrkResult:
    """Run wrk against ``url + path`` cycling ``bodies``; each connection waits ``delay_ms``
    between a response and its next request; ``key_header``: see the
    module docstring."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        work = Path(tmp)
        (work / "bodies.txt").write_bytes(b"\n".join(bodies) + b"\n")
        script = LUA_TEMPLATE % {
            "path": path,
            "method": method,
            "headers": lua_table(headers),
            "delay_ms": delay_ms,
            "key_header": f'"{key_header}"' if key_header else "nil",
            "key_prefix": uuid.uuid4().hex,
            "result": work / "result.json",
            "bodies": work / "bodies.txt",
        }
        (work / "script.lua").write_text(script)
        subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(int(seconds), 1)}s",
                "--timeout",
                "10s",
                "-s",
                str(work / "script.lua"),
                url,
            ],
            check=True,
            capture_output=True,
        )
        raw = json.loads((work / "result.json").read_text())
    errors = raw["status_errors"] + raw["timeouts"] + raw["connect_errors"] + raw["read_errors"]
    return WrkResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        errors=errors,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        p999_ms=raw["p999_us"] / 1000,
    )
