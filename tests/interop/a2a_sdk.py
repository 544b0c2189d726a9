"""Drives llmrpc's A2A agent surface with the official `a2a-sdk` (1.x) JSON-RPC client.

    python a2a_sdk.py BASE_URL CASE_JSON [CASE_JSON...]

BASE_URL is the service's root: the only thing the script knows, as an A2A client knows only an
agent's address; the card says the rest. Each CASE_JSON is an object whose "case" names one of
the functions in CASES and whose other members are its inputs and expectations, e.g.
{"case": "send", "model": "gpt-4.1-mini", "prompt": "[send]", "text": "Hello!"}. Members every
case may have: "key" (sent as `Authorization: Bearer …`), "traceparent" (sent as that header),
"version" (the `A2A-Version` header instead of the SDK's own 1.0).
Prints one line per case that passed (`ok   <case>: <detail>`, the detail naming the task as
`task=<id>` where there is one); stops at the first that fails, with exit status 1 and a message
saying what was expected and what came instead; exits 3 when the SDK is not installed. Run by
tests/it/a2a_sdk.rs, which sets the upstream's answers up and checks what reached it and what the
ledger recorded. Needs the stdlib, `a2a-sdk` and `httpx` only.
"""

import asyncio
import json
import re
import sys
import uuid

try:
    import httpx
    from a2a.client import A2ACardResolver, A2AClientError, ClientConfig, ClientFactory
    from a2a.helpers import get_artifact_text, get_message_text
    from a2a.types import (
        CancelTaskRequest,
        GetTaskRequest,
        ListTasksRequest,
        Message,
        Part,
        Role,
        SendMessageRequest,
        TaskState,
    )
    from a2a.utils.constants import TransportProtocol
    from a2a.utils.errors import (
        TaskNotCancelableError,
        TaskNotFoundError,
        UnsupportedOperationError,
        VersionNotSupportedError,
    )
except ImportError as e:
    # The harness tells this status apart: the test environment is incomplete, no case failed.
    print(f"{sys.executable} lacks the a2a-sdk package: {e}", file=sys.stderr)
    sys.exit(3)

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
COMPLETED = TaskState.TASK_STATE_COMPLETED
WORKING = TaskState.TASK_STATE_WORKING
CANCELED = TaskState.TASK_STATE_CANCELED


class Failed(Exception):
    pass


def check(condition, what, got=None):
    if not condition:
        raise Failed(what if got is None else f"{what}; got {got!r}")


def equal(got, expected, what):
    check(got == expected, f"{what}: expected {expected!r}", got)


def state(value):
    return TaskState.Name(value)


def equal_state(got, expected, what):
    equal(state(got), state(expected), what)


def request(case):
    """The case's message: its prompt as text, its model and contextId when given."""
    message = Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_USER,
        parts=[Part(text=case.get("prompt", "Say hello."))],
    )
    if "model" in case:
        message.metadata.update({"model": case["model"]})
    if "context_id" in case:
        message.context_id = case["context_id"]
    return SendMessageRequest(message=message)


def task_text(task):
    return "".join(get_artifact_text(a, "") for a in task.artifacts)


class Agent:
    """The card, resolved from the base URL alone, and a client of each kind made from it, all
    on one httpx client that carries the case's headers."""

    def __init__(self, base_url, case):
        headers = {}
        if "key" in case:
            headers["Authorization"] = f"Bearer {case['key']}"
        if "traceparent" in case:
            headers["traceparent"] = case["traceparent"]
        if "version" in case:
            headers["A2A-Version"] = case["version"]
        self.base_url = base_url
        self.http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(20.0))

    async def __aenter__(self):
        self.card = await A2ACardResolver(self.http, self.base_url).get_agent_card()

        def client(streaming):
            config = ClientConfig(
                httpx_client=self.http,
                streaming=streaming,
                supported_protocol_bindings=[TransportProtocol.JSONRPC],
            )
            return ClientFactory(config).create(self.card)

        self.unary, self.streaming = client(False), client(True)
        return self

    async def __aexit__(self, *exc):
        await self.unary.close()
        await self.streaming.close()
        await self.http.aclose()


async def send_one(agent, case):
    """A non-streaming send: the one task it answers."""
    events = [ev async for ev in agent.unary.send_message(request(case))]
    equal(len(events), 1, "events of a non-streaming send")
    check(events[0].HasField("task"), "the answer is a task", events[0])
    return events[0].task


async def card(agent, case):
    c = agent.card
    equal(c.name, "llmrpc", "name")
    equal(len(c.supported_interfaces), 1, "interfaces")
    interface = c.supported_interfaces[0]
    equal(interface.url, case["url"], "interface url")
    equal(interface.protocol_binding, "JSONRPC", "protocol binding")
    equal(interface.protocol_version, "1.0", "protocol version")
    check(c.capabilities.streaming, "streaming capability")
    equal(sorted(s.id for s in c.skills), case["skills"], "skills")
    equal(sorted(c.security_schemes.keys()), case["security_schemes"], "security schemes")
    if case["security_schemes"]:
        scheme = c.security_schemes["bearer"].http_auth_security_scheme
        equal(scheme.scheme, "Bearer", "scheme")
    return f"{interface.url}, skills {sorted(s.id for s in c.skills)}"


async def send(agent, case):
    task = await send_one(agent, case)
    equal_state(task.status.state, COMPLETED, "state")
    equal(task_text(task), case["text"], "answer")
    check(TRACE_ID.match(task.metadata["trace_id"]), "trace_id", task.metadata)
    if "context_id" in case:
        equal(task.context_id, case["context_id"], "contextId")
    return f"task={task.id} {task_text(task)!r}"


async def stream(agent, case):
    events = [ev async for ev in agent.streaming.send_message(request(case))]
    kinds = [ev.WhichOneof("payload") for ev in events]
    check(kinds[0] == "task" and kinds[-1] == "status_update", "task ... status_update", kinds)
    equal_state(events[0].task.status.state, WORKING, "first state")
    task_id = events[0].task.id
    text, pieces = "", []
    for ev in events[1:-1]:
        equal(ev.WhichOneof("payload"), "artifact_update", "event between task and end")
        update = ev.artifact_update
        equal(update.task_id, task_id, "update's task")
        equal(update.append, bool(pieces), "append")
        piece = get_artifact_text(update.artifact, "")
        pieces.append(piece)
        text = text + piece if update.append else piece
    equal(pieces, case["pieces"], "pieces")
    equal(text, "".join(case["pieces"]), "assembled answer")
    end = events[-1].status_update
    equal(end.task_id, task_id, "final update's task")
    equal_state(end.status.state, COMPLETED, "final state")
    return f"task={task_id} {text!r} in {len(pieces)} pieces"


async def get(agent, case):
    sent = await send_one(agent, case)
    task = await agent.unary.get_task(GetTaskRequest(id=sent.id))
    equal(task.id, sent.id, "id")
    equal(task.context_id, sent.context_id, "contextId")
    equal_state(task.status.state, COMPLETED, "state")
    equal(task_text(task), case["text"], "answer")
    try:
        await agent.unary.get_task(GetTaskRequest(id="no-such-task"))
    except TaskNotFoundError as e:
        # The ErrorInfo's metadata is the exception's data: it names the trace.
        check(e.data and TRACE_ID.match(e.data.get("trace_id", "")), "trace_id in data", e.data)
    else:
        raise Failed("an unknown task was found")
    return f"task={task.id} {state(task.status.state)} {task_text(task)!r}"


async def cancel(agent, case):
    """Streams a message whose upstream hangs after its first piece, cancels the task on that
    piece, then reads the stream to its end."""
    task_id, canceled, text = None, None, ""
    states = []
    async for ev in agent.streaming.send_message(request(case)):
        kind = ev.WhichOneof("payload")
        if kind == "task":
            task_id = ev.task.id
        elif kind == "artifact_update":
            text += get_artifact_text(ev.artifact_update.artifact, "")
            if canceled is None:
                canceled = await agent.unary.cancel_task(CancelTaskRequest(id=task_id))
        elif kind == "status_update":
            states.append(state(ev.status_update.status.state))
    check(canceled is not None, "no piece came to cancel on")
    equal(canceled.id, task_id, "canceled task")
    equal_state(canceled.status.state, CANCELED, "cancel_task's answer")
    equal(text, case["text"], "text before the cancel")
    equal(states, [state(CANCELED)], "the stream's end")
    task = await agent.unary.get_task(GetTaskRequest(id=task_id))
    equal_state(task.status.state, CANCELED, "state afterwards")
    try:
        await agent.unary.cancel_task(CancelTaskRequest(id=task_id))
    except TaskNotCancelableError:
        pass
    else:
        raise Failed("a canceled task was canceled again")
    return f"task={task_id} canceled after {text!r}"


async def unsupported(agent, case):
    try:
        await agent.unary.list_tasks(ListTasksRequest())
    except UnsupportedOperationError as e:
        return f"UnsupportedOperationError: {e.message}"
    raise Failed("list_tasks answered")


async def version(agent, case):
    try:
        await send_one(agent, case)
    except VersionNotSupportedError as e:
        return f"VersionNotSupportedError: {e.message}"
    raise Failed(f"A2A-Version {case['version']} was served")


async def refused(agent, case):
    """A caller without a valid key: the card resolves, the message does not go through."""
    try:
        await send_one(agent, case)
    except A2AClientError as e:
        check("401" in e.message, "HTTP 401", e.message)
        return f"{type(e).__name__}: {e.message[:60]}"
    raise Failed("the message went through without a key")


CASES = {f.__name__: f for f in [card, send, stream, get, cancel, unsupported, version, refused]}


async def run(base_url, arg):
    case = json.loads(arg)
    async with Agent(base_url, case) as agent:
        return await CASES[case["case"]](agent, case)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    from importlib.metadata import version as package_version

    print(f"a2a-sdk {package_version('a2a-sdk')}", flush=True)
    for arg in sys.argv[2:]:
        case = json.loads(arg)
        label = " ".join(str(case[k]) for k in ("case", "prompt") if k in case)
        try:
            detail = asyncio.run(run(sys.argv[1], arg))
        except Failed as e:
            sys.exit(f"FAIL {label}: {e}\ncase: {arg}")
        except Exception as e:  # an SDK exception where none was expected, or a bug here
            sys.exit(f"FAIL {label}: {type(e).__name__}: {e!r}\ncase: {arg}")
        print(f"ok   {label}: {detail}", flush=True)


if __name__ == "__main__":
    main()
