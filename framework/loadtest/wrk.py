"""The wrk generator: one wrk process per instance, driven by a Lua script.

Each wrk thread drives one connection. It picks a request from the mix for
every send, times it (LuaJIT's FFI ``gettimeofday``), writes one sample line
per answer into a file of its own (in batches, so progress can be read while it
runs), and stops right after the answer that exhausts its budget of requests
(``--requests``) or that ends past the deadline (``--duration``): no request is
in flight when a thread stops, so the count of completed requests is exact.
wrk itself is then interrupted, and prints its socket error counts as JSON.
"""

from __future__ import annotations

import json
import math
import pathlib
import shutil
import signal
import subprocess
import typing as t

from ._plan import Plan

__all__ = ["WrkRun", "find_wrk", "lua_literal", "lua_script"]

FLUSH_SECONDS = 0.25
"""How often a thread appends its samples to its file."""

_LUA = r"""
-- Written by framework loadtest: the request mix and its bookkeeping.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } fw_timeval;
int gettimeofday(fw_timeval *tv, void *tz);
]]
local tv = ffi.new("fw_timeval")
local function now()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) + tonumber(tv.tv_usec) / 1e6
end

local C = __CONFIG__
local next_tid = 1

function setup(thread)
  thread:set("tid", next_tid)
  thread:set("budget", C.budgets[next_tid] or 0)
  next_tid = next_tid + 1
end

tid = 0
budget = 0
local count = 0
local serial = 0
local current = nil
local uniq = nil
local started = 0
local buffer = {}
local last_flush = 0
local samples_path = nil

local function part_list(parts)
  -- Lua arrays are 1-based; [list, context] pairs arrive 0-based.
  for _, p in ipairs(parts) do
    if type(p) == "table" then p[1] = p[1] + 1; p[2] = p[2] + 1 end
  end
end

function init(args)
  math.randomseed(tid * 7919 + math.floor(now() * 1000) % 1000003)
  samples_path = string.format("%s/wrk-%d-%d.tsv", C.dir, C.instance, tid)
  for _, r in ipairs(C.requests) do
    part_list(r.path)
    for _, h in ipairs(r.headers) do part_list(h[2]) end
    if r.body then part_list(r.body) end
    if r.expect then
      local set = {}
      for _, s in ipairs(r.expect) do set[s] = true end
      r.expect_set = set
    end
  end
  last_flush = now()
end

local function render(parts, picks)
  local out = {}
  for i = 1, #parts do
    local p = parts[i]
    local kind = type(p)
    if kind == "string" then
      out[i] = p
    elseif kind == "number" then
      out[i] = uniq
    else
      local variants = C.values[p[1]]
      local idx = picks[p[1]]
      if idx == nil then
        idx = math.random(#variants[1])
        picks[p[1]] = idx
      end
      out[i] = variants[p[2]][idx]
    end
  end
  return table.concat(out)
end

function request()
  local pick = math.random(C.total)
  for _, r in ipairs(C.requests) do
    if pick <= r.upto then current = r break end
  end
  serial = serial + 1
  if current.unique then
    uniq = string.format("%s-%d-%d-%d", C.prefix, C.instance, tid, serial)
  else
    uniq = nil
  end
  local picks = {}
  local headers = {}
  for _, h in ipairs(current.headers) do headers[h[1]] = render(h[2], picks) end
  local body = nil
  if current.body then body = render(current.body, picks) end
  local built = wrk.format(current.method, render(current.path, picks), headers, body)
  started = now()
  return built
end

local function flush()
  if #buffer > 0 then
    local f = io.open(samples_path, "a")
    f:write(table.concat(buffer, "\n"), "\n")
    f:close()
    buffer = {}
  end
end

function response(status, headers, body)
  local t = now()
  count = count + 1
  local ok = 1
  if current.expect_set and not current.expect_set[status] then ok = 0 end
  local u = "-"
  if uniq and ok == 1 then u = uniq end
  buffer[#buffer + 1] = string.format("%d\t%.6f\t%.3f\t%s\t%d\t%d\t%s",
    C.instance, t, (t - started) * 1000, current.name, status, ok, u)
  if (budget > 0 and count >= budget) or (C.deadline > 0 and t >= C.deadline) then
    flush()
    local f = io.open(string.format("%s/wrk-%d-%d.done", C.dir, C.instance, tid), "w")
    f:write(tostring(count), "\n")
    f:close()
    wrk.thread:stop()
  elseif t - last_flush >= C.flush then
    flush()
    last_flush = t
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
    summary.requests, e.connect, e.read, e.write, e.timeout))
end
"""


def find_wrk() -> str | None:
    """Return the path of the ``wrk`` program, or ``None``."""
    return shutil.which("wrk")


def lua_literal(value: t.Any) -> str:
    """Write ``value`` (JSON-like data) as a Lua expression."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "0"
    if isinstance(value, str):
        escaped = "".join(
            character
            if 32 <= ord(character) < 127 and character not in '"\\'
            else "".join(f"\\{byte:03d}" for byte in character.encode("utf-8"))
            for character in value
        )
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "{" + ", ".join(lua_literal(item) for item in value) + "}"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"[{lua_literal(key)}] = {lua_literal(item)}"
                for key, item in value.items()
            )
            + "}"
        )
    raise TypeError(f"cannot write {type(value).__name__} as Lua")


def lua_script(
    plan: Plan,
    *,
    instance: int,
    budgets: list[int],
    deadline: float,
    samples_dir: pathlib.Path,
) -> str:
    """Return the Lua script of one wrk process (one instance)."""
    config = {
        "requests": plan.requests,
        "values": plan.values,
        "total": plan.total_weight,
        "prefix": plan.prefix,
        "instance": instance,
        "budgets": budgets,
        "deadline": deadline,
        "dir": str(samples_dir),
        "flush": FLUSH_SECONDS,
    }
    return _LUA.replace("__CONFIG__", lua_literal(config))


class WrkRun:
    """One wrk process loading one instance, its output in files.

    :param connections: threads, one connection each.
    :param budgets: requests per thread (``--requests``), or zeros.
    :param deadline: epoch seconds when threads stop (``--duration``), or 0.
    """

    def __init__(
        self,
        wrk: str,
        plan: Plan,
        *,
        instance: int,
        url: str,
        connections: int,
        budgets: list[int],
        deadline: float,
        samples_dir: pathlib.Path,
        run_dir: pathlib.Path,
        timeout: float,
    ) -> None:
        self.instance = instance
        self.connections = connections
        self.samples_dir = samples_dir
        self.script = run_dir / f"wrk-{instance}.lua"
        self.script.write_text(
            lua_script(
                plan,
                instance=instance,
                budgets=budgets,
                deadline=deadline,
                samples_dir=samples_dir,
            )
        )
        self.output = run_dir / f"wrk-{instance}.out"
        seconds = 24 * 3600 if not deadline else 3600
        self.command = [
            wrk,
            f"-t{connections}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            f"{max(1, math.ceil(timeout))}s",
            "-s",
            str(self.script),
            url,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start wrk."""
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def threads_done(self) -> int:
        """Return how many threads have used up their budget or time."""
        return len(list(self.samples_dir.glob(f"wrk-{self.instance}-*.done")))

    def finished(self) -> bool:
        """Whether every thread is done, or wrk has exited."""
        if self.process is None or self.process.poll() is not None:
            return True
        return self.threads_done() >= self.connections

    def stop(self) -> None:
        """Interrupt wrk (it prints its summary) and wait for it."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            # wrk runs for its whole -d; SIGINT ends it early, with its report.
            process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def socket_errors(self) -> dict[str, int]:
        """Return wrk's counts of connect, read, write and timeout errors."""
        errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
        try:
            text = self.output.read_text(errors="replace")
        except FileNotFoundError:
            return errors
        for line in text.splitlines():
            if line.startswith('{"requests"'):
                summary = json.loads(line)
                for key in errors:
                    errors[key] = int(summary.get(key, 0))
        return errors

    def problem(self) -> str | None:
        """Describe how wrk failed (it exited before its threads were done)."""
        if self.process is None or self.process.returncode in (None, 0):
            return None
        if self.threads_done() >= self.connections:
            return None
        text = self.output.read_text(errors="replace").strip().splitlines()
        last = text[-1] if text else ""
        return f"wrk exited with status {self.process.returncode}: {last}"
