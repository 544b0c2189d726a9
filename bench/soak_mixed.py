"""The mixed soak's load (bench/soak.sh with MODE=mixed): calls of every kind at a steady rate,
open loop, each checked for an answer.

Per cycle of ten calls: three completions, two SSE streams read to the end, one SSE stream the
caller closes after its first chunk, one WebSocket stream cancelled with llm.stream.cancel after
its first chunk, and (on the Anthropic and Gemini sides of the mock, away from the healthy
traffic) one upstream answering 503 until the retries run out, one upstream that never answers
(a 1.5 s deadline), one stream of garbage. soak.sh raises the breaker's threshold out of reach,
so that each of these reaches its upstream instead of being refused by an open circuit. A call is answered when its answer (or,
for the cancelled ones, its first chunk) arrives within 30 s; anything else is unanswered.

    python bench/soak_mixed.py URL RATE SECONDS > report.json
"""

import asyncio
import itertools
import json
import sys
import time
from collections import Counter

import httpx
from websockets.asyncio.client import connect

OK = "gpt-4o-mini"
STREAM = "gpt-4o-mini_chunks-10_interval-2"
LONG_STREAM = "gpt-4o-mini_chunks-100_interval-10"
FAILING = "claude-sonnet-4-5_status-503"
HANGING = "gemini-2.5-flash_hang"
GARBAGE = "gemini-2.5-flash_garbage"
ANSWER_WITHIN = 30.0


def request(i, method, model, **extra):
    params = {"model": model, "messages": [{"role": "user", "content": f"call {i}"}], **extra}
    return {"jsonrpc": "2.0", "id": i, "method": method, "params": params,
            "a2a_context": {"trace_id": f"soak-{i}", "source_agent": "soak"}}


def outcome(answer):
    """'ok', 'cancelled' or the error code of an answer or a last chunk."""
    if "error" in answer:
        return str(answer["error"]["code"])
    error = answer.get("result", {}).get("error") if isinstance(answer.get("result"), dict) else None
    return str(error["code"]) if error else "ok"


async def complete(client, url, i, model, **extra):
    response = await client.post(url, json=request(i, "llm.complete", model, **extra))
    return outcome(response.json())


async def sse(client, url, i, model, close_after_first=False):
    headers = {"Accept": "text/event-stream"}
    async with client.stream("POST", url, json=request(i, "llm.stream", model), headers=headers) as r:
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if close_after_first and "result" in event and not event["result"].get("done"):
                return "cancelled"
            if "error" in event or event["result"].get("done"):
                return outcome(event)
    return "ended without a last chunk"


async def ws_cancelled(ws_url, i):
    async with connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps(request(i, "llm.stream", LONG_STREAM)))
        subscription = json.loads(await ws.recv())
        if "error" in subscription:
            return outcome(subscription)
        while True:
            message = json.loads(await ws.recv())
            if message.get("method") == "llm.stream.chunk":
                break
        cancel = {"jsonrpc": "2.0", "id": f"c{i}", "method": "llm.stream.cancel",
                  "params": [subscription["result"]]}
        await ws.send(json.dumps(cancel))
        while True:
            message = json.loads(await ws.recv())
            if message.get("id") == f"c{i}":
                # False: the stream had ended before the cancel arrived (the caller was slow).
                return "cancelled" if message.get("result") is True else "ended before the cancel"


CYCLE = ["complete", "sse", "complete", "sse_closed", "upstream_503", "complete", "sse",
         "ws_cancelled", "upstream_hang", "upstream_garbage"]


async def one(kind, client, url, ws_url, i):
    if kind == "complete":
        return await complete(client, url, i, OK)
    if kind == "sse":
        return await sse(client, url, i, STREAM)
    if kind == "sse_closed":
        return await sse(client, url, i, LONG_STREAM, close_after_first=True)
    if kind == "ws_cancelled":
        return await ws_cancelled(ws_url, i)
    if kind == "upstream_503":
        return await complete(client, url, i, FAILING)
    if kind == "upstream_hang":
        return await complete(client, url, i, HANGING, timeout_ms=1500)
    return await sse(client, url, i, GARBAGE)


async def main(url, rate, seconds):
    ws_url = url.replace("http://", "ws://", 1)
    outcomes = {kind: Counter() for kind in CYCLE}
    unanswered = Counter()
    sent = Counter()
    limits = httpx.Limits(max_connections=4096, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits, timeout=ANSWER_WITHIN) as client:
        async def run(kind, i):
            try:
                result = await asyncio.wait_for(one(kind, client, url, ws_url, i), ANSWER_WITHIN)
                outcomes[kind][result] += 1
            except Exception as e:  # noqa: BLE001 - every failure is a finding, counted by kind
                unanswered[f"{kind}: {type(e).__name__}"] += 1

        tasks = set()
        late = []
        start = time.monotonic()
        for i, kind in zip(itertools.count(), itertools.cycle(CYCLE)):
            due = start + i / rate
            if due - start >= seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late.append(-delay)
            sent[kind] += 1
            task = asyncio.create_task(run(kind, i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    json.dump({
        "rate": rate,
        "seconds": seconds,
        "sent": sum(sent.values()),
        "answered": sum(sum(c.values()) for c in outcomes.values()),
        "unanswered": sum(unanswered.values()),
        "unanswered_by_reason": dict(unanswered),
        # How far this generator itself fell behind its schedule: calls it sent more than a
        # second late mean the load, not the service, was the bottleneck.
        "sent_late_by_over_1s": sum(1 for s in late if s > 1.0),
        "most_late_s": round(max(late, default=0.0), 3),
        "outcomes": {kind: dict(c) for kind, c in outcomes.items()},
    }, sys.stdout, indent=1)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
