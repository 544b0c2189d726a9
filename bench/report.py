"""Writes docs/benchmarks.md from the JSON that bench/run.sh (and bench/compare.sh) left in OUT."""
import json
import os
import platform
import statistics
import subprocess
import sys

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None


def steal(first, last):
    """The share of the machine's CPU time the hypervisor gave to others between two accounts."""
    a, b = read(f"cpu-{first}.stat").split()[1:], read(f"cpu-{last}.stat").split()[1:]
    if not a or not b:
        return None
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    spent = [int(y) - int(x) for x, y in zip(a[:8], b[:8])]
    return spent[7] / sum(spent) if sum(spent) else None


def read(name, default=""):
    path = os.path.join(out, name)
    return open(path).read().strip() if os.path.exists(path) else default


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


ticks_per_second = os.sysconf("SC_CLK_TCK")


def cpu_us_per_request(name):
    ticks, r = read(name + ".ticks"), load(name)
    if not ticks or not r or not r["requests"]:
        return None
    return int(ticks) / ticks_per_second * 1e6 / r["requests"]


def ms(x):
    return "–" if x is None else f"{x:.3f}"


def pct(r, key, q):
    return None if not r or not r.get(key) else r[key][q]


cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem_gib = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 2**20
lines = []
w = lines.append
w("# Benchmarks")
w("")
w("Produced by `bench/run.sh` (with `COMPARE=1` for LiteLLM), which writes this file. Everything")
w("runs on one machine over 127.0.0.1: the load generator (`llmrpc bench`), the mock upstream")
w("(`llmrpc mock-upstream`) and the service under test share its cores, as they would in CI.")
w("The service runs with `LLMRPC_LOG=warn` and its default SQLite ledger.")
w("")
w(f"- Machine: {os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, Linux {platform.release()}")
w(f"- llmrpc {sh('git', 'rev-parse', '--short', 'HEAD')}, {sh('rustc', '--version')}, release build")
version = read("litellm_version.txt")
if version:
    w(f"- LiteLLM {version} proxy: 2 workers, master key, no database, callbacks off")
w(f"- Each measurement: {load('direct-c1')['seconds'] if load('direct-c1') else '?'} s after a warm-up")
stolen = steal("start", "end")
if stolen is not None:
    w(f"- CPU time stolen by the hypervisor over the run: {stolen:.1%} (the machine's speed moves "
      "with it)")
w("")
w("## llm.complete: throughput and latency")
w("")
w("Added latency is through llmrpc minus direct to the mock, at the same concurrency.")
w("")
w("| connections | direct req/s | llmrpc req/s | llmrpc/direct | LiteLLM req/s | llmrpc/LiteLLM | direct p50 / p99 ms | llmrpc p50 / p99 ms | added p50 / p99 ms | llmrpc CPU µs/req |")
w("|---|---|---|---|---|---|---|---|---|---|")
for c in (1, 16, 128):
    d, t, l = load(f"direct-c{c}"), load(f"through-c{c}"), load(f"litellm-c{c}")
    if not d or not t:
        continue
    ratio = t["requests_per_second"] / d["requests_per_second"]
    lite = f"{l['requests_per_second']:.0f}" if l else "–"
    vs = f"{t['requests_per_second'] / l['requests_per_second']:.0f}×" if l and l["requests_per_second"] else "–"
    added = f"{t['latency_ms']['p50'] - d['latency_ms']['p50']:.3f} / {t['latency_ms']['p99'] - d['latency_ms']['p99']:.3f}"
    cpu_us = cpu_us_per_request(f"through-c{c}")
    w(f"| {c} | {d['requests_per_second']:.0f} | {t['requests_per_second']:.0f} | {ratio:.0%} | {lite} | {vs} "
      f"| {ms(d['latency_ms']['p50'])} / {ms(d['latency_ms']['p99'])} | {ms(t['latency_ms']['p50'])} / {ms(t['latency_ms']['p99'])} "
      f"| {added} | {'–' if cpu_us is None else f'{cpu_us:.0f}'} |")
w("")
w("## llm.stream: time to first chunk, and 1,000 streams at once")
w("")
d, t, l = load("direct-stream"), load("through-stream"), load("litellm-stream")
if d and t:
    w("One stream at a time (SSE; 20 chunks 2 ms apart):")
    w("")
    w("| | first chunk p50 ms | p99 ms |")
    w("|---|---|---|")
    w(f"| direct | {ms(pct(d, 'first_chunk_ms', 'p50'))} | {ms(pct(d, 'first_chunk_ms', 'p99'))} |")
    w(f"| llmrpc | {ms(pct(t, 'first_chunk_ms', 'p50'))} | {ms(pct(t, 'first_chunk_ms', 'p99'))} |")
    if l and l.get("first_chunk_ms"):
        w(f"| LiteLLM | {ms(pct(l, 'first_chunk_ms', 'p50'))} | {ms(pct(l, 'first_chunk_ms', 'p99'))} |")
    added = pct(t, "first_chunk_ms", "p50") - pct(d, "first_chunk_ms", "p50")
    w(f"| added by llmrpc | {added:.3f} | |")
    w("")
s = load("streams-1000")
if s:
    rss = read("peak_rss_kb.txt")
    w(f"1,000 WebSocket subscriptions held at once (50 chunks 20 ms apart, each about a second): "
      f"{s['requests']} streams completed, {s['errors']} errors, stream duration p50 {ms(pct(s, 'latency_ms', 'p50'))} ms, "
      f"p99 {ms(pct(s, 'latency_ms', 'p99'))} ms, max {ms(pct(s, 'latency_ms', 'max'))} ms. "
      f"Peak resident memory of the service, started afresh for this (VmHWM): {int(rss) / 1024:.1f} MiB." if rss else "")
    w("")
w("## The ledger's cost")
w("")
rounds = sorted(int(name[len("ledger-on-"):-len(".json")]) for name in os.listdir(out)
                if name.startswith("ledger-on-") and name.endswith(".json"))
pairs = [(n, load(f"ledger-on-{n}"), load(f"ledger-off-{n}")) for n in rounds]
pairs = [(n, on, off) for n, on, off in pairs if on and off]
if pairs:
    w("At 16 connections, pairs of runs back to back with the ledger on (SQLite, a new file per "
      "run) and off (`LLMRPC_DATABASE_URL=off`), alternating which goes first:")
    w("")
    w("| pair | on req/s | off req/s | throughput lost | service CPU µs/call on | off |")
    w("|---|---|---|---|---|---|")
    losses = []
    for n, on, off in pairs:
        loss = 1 - on["requests_per_second"] / off["requests_per_second"]
        losses.append(loss)
        w(f"| {n} | {on['requests_per_second']:.0f} | {off['requests_per_second']:.0f} | {loss:.1%} | "
          f"{cpu_us_per_request(f'ledger-on-{n}'):.0f} | {cpu_us_per_request(f'ledger-off-{n}'):.0f} |")
    w("")
    cpu_on = statistics.median(cpu_us_per_request(f"ledger-on-{n}") for n, _, _ in pairs)
    cpu_off = statistics.median(cpu_us_per_request(f"ledger-off-{n}") for n, _, _ in pairs)
    stolen = steal("ledger-start", "ledger-end")
    w(f"Median throughput lost over the pairs: **{statistics.median(losses):.1%}**; median service "
      f"CPU per call {cpu_on:.0f} µs on, {cpu_off:.0f} µs off. A single pair can differ by more than "
      "the ledger costs on a machine whose speed drifts and whose three processes compete for two "
      "cores; the median of the pairs is the figure to read."
      + (f" The hypervisor took {stolen:.1%} of the CPU time during the pairs." if stolen is not None else ""))
    w("")
soak = load("soak")
samples = [int(x) for x in read("soak_rss_kb.txt").split()]
if soak and samples:
    steady = samples[3:] or samples
    spread = (max(steady) - min(steady)) / min(steady)
    w("## Soak")
    w("")
    w(f"`bench/soak.sh`: {soak['requests']} calls at a fixed {soak['rate']:.0f} req/s (open loop) for "
      f"{soak['seconds']:.0f} s, {soak['errors']} errors, latency p50 {ms(pct(soak, 'latency_ms', 'p50'))} ms, "
      f"p99 {ms(pct(soak, 'latency_ms', 'p99'))} ms, p99.9 {ms(pct(soak, 'latency_ms', 'p999'))} ms. "
      f"Resident memory sampled every 10 s after warm-up: {min(steady) / 1024:.1f}–{max(steady) / 1024:.1f} MiB "
      f"({spread:.1%} spread).")
    w("")
lite_rss = read("litellm_rss_kb.txt")
if lite_rss:
    w(f"LiteLLM's processes held {int(lite_rss) / 1024:.0f} MiB resident at the end of its run.")
    w("")
w("## Commands")
w("")
w("```bash")
w("bench/run.sh                 # direct, through llmrpc, streams, ledger on/off; writes this file")
w("COMPARE=1 bench/run.sh       # the same, plus LiteLLM through bench/compare.sh")
w("bench/soak.sh                # 5 minutes at 500 req/s: memory and errors; then bench/run.sh again")
w("target/release/llmrpc bench --url http://127.0.0.1:8300 --concurrency 16 --duration 10 --json")
w("target/release/llmrpc bench --openai-url http://127.0.0.1:9300/v1 --concurrency 16   # the mock directly")
w("python3 bench/sqlite_floor.py  # SQLite's own CPU per ledger row on this machine, without llmrpc")
w("bench/openai_compat.sh         # the OpenAI-compatible surface beside the JSON-RPC path")
w("bench/auth.sh                  # caller keys: anonymous, a team without credits, a team with credits")
w("MODE=mixed bench/soak.sh       # 30 minutes of every kind of call, failing upstreams included")
w("bench/faults.sh                # PostgreSQL stopped, SQLite read-only, disk full, OTLP down (root)")
w("bench/inflight.sh              # 1,000 calls in flight against a slow upstream, then 1,500")
w("```")
compat = os.path.join(out, "openai-compat", "table.md")
if os.path.exists(compat):
    w("")
    w("## The OpenAI-compatible surface beside the JSON-RPC path")
    w("")
    w("`bench/openai_compat.sh` (run by bench/run.sh): one service, the same mock and load generator; "
      "`llmrpc bench --url` for `llm.complete`, `llmrpc bench --openai-url …/v1` for "
      "`POST /v1/chat/completions` and for the mock directly, alternating. Added latency is over direct.")
    w("")
    w(open(compat).read().rstrip())
auth = os.path.join(out, "auth", "table.md")
if os.path.exists(auth):
    w("")
    w("## What caller keys cost")
    w("")
    w("`bench/auth.sh` (run by bench/run.sh): one service, the same mock and load generator, "
      "`llm.complete` anonymous, with a caller key of a team without credits (the key is found in "
      "the replica's cache: no database round trip) and of a team with credits (one reservation "
      "in SQLite before each call, settled after); each twice, in rotating order.")
    w("")
    w(open(auth).read().rstrip())
hardening = [
    ("soak_mixed.txt", "Mixed soak", "`MODE=mixed bench/soak.sh` (not run by bench/run.sh): at a "
     "steady rate for 30 minutes, per ten calls three completions, two SSE streams read to the end, "
     "one SSE stream closed by the caller after its first chunk, one WebSocket stream cancelled "
     "after its first chunk, one upstream answering 503 until the retries run out, one that never "
     "answers (1.5 s deadline), one stream of garbage (bench/soak_mixed.py). Memory and open files "
     "sampled every 10 s; flat means the median of the last fifth within 10 % of the first "
     "fifth's (the open files move with the calls in flight at the moment of each sample)."),
    ("inflight.txt", "1,000 calls in flight", "`bench/inflight.sh` (not run by bench/run.sh): "
     "closed loop, every upstream answer 2 s late, ledger off, the default `max_in_flight` of "
     "1,024."),
    ("faults.txt", "Faults", "`bench/faults.sh` (not run by bench/run.sh; needs root): 100 calls/s "
     "of `llm.complete` while what the service stands on fails (see proto-docs/operations.md, "
     "\"How records are written\"). Rows include the load generator's one check call."),
]
for name, title, intro in hardening:
    text = read(name)
    if text:
        w("")
        w(f"## {title}")
        w("")
        w(intro)
        w("")
        w("```text")
        w(text)
        w("```")
print("\n".join(lines))
extra = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
if os.path.exists(extra):
    print()
    print(open(extra).read().rstrip())
