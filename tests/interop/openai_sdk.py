"""Drives llmrpc's OpenAI-compatible surface with the official `openai` SDK.

    python openai_sdk.py BASE_URL CASE_JSON [CASE_JSON...]

BASE_URL is the service's root (the script adds /v1). Each CASE_JSON is an object whose "case"
names one of the functions in CASES and whose other members are its expectations, e.g.
{"case": "complete", "model": "gpt-4.1-mini", "text": "Hello!", "usage": [9, 3, 12]}.
Prints one line per case that passed; stops at the first that fails, with exit status 1 and a
message saying what was expected and what came instead. Run by tests/it/openai_sdk.rs, which sets
the upstream's answers up and checks what reached it. Needs the stdlib and `openai` only.
"""

import json
import re
import sys

try:
    import openai
except ImportError:
    # The harness tells this status apart: the test environment is incomplete, no case failed.
    print(f"{sys.executable} lacks the openai package", file=sys.stderr)
    sys.exit(3)

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
QUESTION = {"role": "user", "content": "What is the weather in Paris?"}
# What the upstream mock answers once the tool's result (it looks for "18 C") is in the request.
TOOL_RESULT = "Sunny, 18 C"
FINAL_ANSWER = "It is 18 C in Paris."


class Failed(Exception):
    pass


def check(condition, what, got=None):
    if not condition:
        raise Failed(what if got is None else f"{what}; got {got!r}")


def equal(got, expected, what):
    check(got == expected, f"{what}: expected {expected!r}", got)


def check_trace_headers(headers, trace_id=None):
    """Every answer, errors included, names the call's trace."""
    got = headers.get("x-llmrpc-trace-id")
    check(got, "no x-llmrpc-trace-id header", dict(headers))
    if trace_id is not None:
        equal(got, trace_id, "x-llmrpc-trace-id")
    traceparent = headers.get("traceparent", "")
    check(TRACEPARENT.match(traceparent), "traceparent is not W3C's form", traceparent)


def extra(case):
    """`extra_body` with the caller's a2a_context, when the case gives a trace id."""
    if "trace_id" in case:
        return {"extra_body": {"a2a_context": {"trace_id": case["trace_id"]}}}
    return {}


def check_usage(usage, expected):
    check(usage is not None, "no usage")
    got = [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens]
    equal(got, expected, "usage [prompt, completion, total]")


def models(client, case):
    page = client.models.list()
    ids = [m.id for m in page]
    check(all(m.object == "model" for m in page.data), "an entry is not a model", page.data)
    if "exact" in case:
        equal(sorted(ids), sorted(case["exact"]), "model ids")
    for wanted in case.get("present", []):
        check(wanted in ids, f"{wanted!r} is not listed", ids)
    for unwanted in case.get("absent", []):
        check(unwanted not in ids, f"{unwanted!r} is listed", ids)
    return f"{len(ids)} ids"


def complete(client, case):
    raw = client.chat.completions.with_raw_response.create(
        model=case["model"],
        messages=[{"role": "user", "content": "Say hello."}],
        **extra(case),
    )
    check_trace_headers(raw.headers, case.get("trace_id"))
    response = raw.parse()
    check(isinstance(response, openai.types.chat.ChatCompletion), "not a ChatCompletion", response)
    equal(response.object, "chat.completion", "object")
    equal(len(response.choices), 1, "number of choices")
    choice = response.choices[0]
    equal(choice.message.role, "assistant", "role")
    equal(choice.message.content, case["text"], "content")
    equal(choice.finish_reason, "stop", "finish_reason")
    check_usage(response.usage, case["usage"])
    return repr(choice.message.content)


def stream(client, case):
    raw = client.chat.completions.with_raw_response.create(
        model=case["model"],
        messages=[{"role": "user", "content": "Say hello."}],
        stream=True,
        stream_options={"include_usage": True},
        **extra(case),
    )
    check_trace_headers(raw.headers, case.get("trace_id"))
    chunks = list(raw.parse())
    check(chunks, "no chunks")
    for chunk in chunks:
        equal(chunk.object, "chat.completion.chunk", "chunk object")
    with_choice = [c for c in chunks if c.choices]
    equal(with_choice[0].choices[0].delta.role, "assistant", "first delta's role")
    text = "".join(c.choices[0].delta.content or "" for c in with_choice)
    equal(text, case["text"], "joined deltas")
    finishes = [c.choices[0].finish_reason for c in with_choice if c.choices[0].finish_reason]
    equal(finishes, ["stop"], "finish reasons")
    last = chunks[-1]
    equal(last.choices, [], "last chunk's choices")
    check_usage(last.usage, case["usage"])
    check(all(c.usage is None for c in chunks[:-1]), "usage before the last chunk")
    return f"{len(chunks)} chunks, {text!r}"


def check_weather_call(call):
    equal(call.type, "function", "tool call type")
    equal(call.function.name, "get_weather", "tool name")
    equal(json.loads(call.function.arguments), {"city": "Paris"}, "tool arguments")
    check(call.id, "tool call without an id", call)


def answer_tool(client, model, assistant, call_id):
    """Replays the assistant's tool call with its result; the model then answers."""
    response = client.chat.completions.create(
        model=model,
        messages=[
            QUESTION,
            assistant,
            {"role": "tool", "tool_call_id": call_id, "content": TOOL_RESULT},
        ],
        tools=[WEATHER_TOOL],
    )
    equal(response.choices[0].message.content, FINAL_ANSWER, "answer after the tool result")
    equal(response.choices[0].finish_reason, "stop", "finish_reason after the tool result")


def tools(client, case):
    response = client.chat.completions.create(
        model=case["model"], messages=[QUESTION], tools=[WEATHER_TOOL]
    )
    choice = response.choices[0]
    equal(choice.finish_reason, "tool_calls", "finish_reason")
    calls = choice.message.tool_calls or []
    equal(len(calls), 1, "number of tool calls")
    check_weather_call(calls[0])
    # The SDK's own message object goes back as it came, as its users write tool loops.
    answer_tool(client, case["model"], choice.message, calls[0].id)
    return f"get_weather {calls[0].function.arguments} -> {FINAL_ANSWER!r}"


def tools_stream(client, case):
    chunks = client.chat.completions.create(
        model=case["model"], messages=[QUESTION], tools=[WEATHER_TOOL], stream=True
    )
    calls = {}
    finishes = []
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    equal(finishes, ["tool_calls"], "finish reasons")
    equal(sorted(calls), [0], "tool call indexes")
    call = calls[0]
    equal(call["name"], "get_weather", "tool name")
    equal(json.loads(call["arguments"]), {"city": "Paris"}, "joined tool arguments")
    check(call["id"], "streamed tool call without an id", call)
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
        ],
    }
    answer_tool(client, case["model"], assistant, call["id"])
    return f"get_weather {call['arguments']} -> {FINAL_ANSWER!r}"


def error(client, case):
    """The call fails with exactly the SDK exception `expect`, with its status and body."""
    expected = getattr(openai, case["expect"])
    params = {
        "model": case["model"],
        "messages": [{"role": "user", "content": case.get("prompt", "Say hello.")}],
        **case.get("params", {}),
    }
    try:
        answer = client.chat.completions.create(stream=case.get("stream", False), **params)
        if case.get("stream"):
            answer = list(answer)
    except openai.APIError as e:
        check(type(e) is expected, f"expected {expected.__name__}", f"{type(e).__name__}: {e}")
        err = e
    else:
        raise Failed(f"expected {expected.__name__}; the call succeeded: {answer!r}")
    equal(err.status_code, case["status"], "status")
    equal(err.code, case["code"], "error code")
    if "param" in case:
        equal(err.param, case["param"], "error param")
    for secret in case.get("not_in_message", []):
        check(secret not in err.message, "the message leaks a secret", err.message)
    check_trace_headers(err.response.headers)
    if "retry_after" in case:
        equal(err.response.headers.get("retry-after"), case["retry_after"], "Retry-After")
    return f"{type(err).__name__} {err.status_code} {err.code}"


def stream_error(client, case):
    """A stream that fails after its first delta: the SDK raises APIError from the iteration,
    with the deltas before it delivered."""
    chunks = client.chat.completions.create(
        model=case["model"],
        messages=[{"role": "user", "content": case["prompt"]}],
        stream=True,
    )
    text = ""
    try:
        for chunk in chunks:
            for choice in chunk.choices:
                text += choice.delta.content or ""
    except openai.APIStatusError as e:
        raise Failed(f"expected a mid-stream APIError; got {type(e).__name__}: {e}")
    except openai.APIError as e:
        check(type(e) is openai.APIError, "expected APIError", f"{type(e).__name__}: {e}")
        equal(text, case["text"], "text before the failure")
        equal(e.code, case["code"], "error code")
        return f"APIError {e.code} after {text!r}"
    raise Failed(f"the stream ended without an error after {text!r}")


CASES = {f.__name__: f for f in [models, complete, stream, tools, tools_stream, error, stream_error]}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    # No retries of the SDK's own: each call the script makes is one request to the service.
    # The client's timeout is well above the service's, whose 504 the timeout case expects.
    client = openai.OpenAI(
        base_url=sys.argv[1].rstrip("/") + "/v1", api_key="unused", max_retries=0, timeout=20
    )
    print(f"openai {openai.__version__}", flush=True)
    for arg in sys.argv[2:]:
        case = json.loads(arg)
        label = " ".join(str(case[k]) for k in ("case", "model", "prompt", "expect") if k in case)
        label += " (streamed)" if case.get("stream") else ""
        try:
            detail = CASES[case["case"]](client, case)
        except Failed as e:
            sys.exit(f"FAIL {label}: {e}\ncase: {arg}")
        except Exception as e:  # an SDK exception where none was expected, or a bug here
            sys.exit(f"FAIL {label}: {type(e).__name__}: {e}\ncase: {arg}")
        print(f"ok   {label}: {detail}", flush=True)


if __name__ == "__main__":
    main()
