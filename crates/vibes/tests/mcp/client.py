"""The official MCP Python SDK (`mcp` on PyPI) as a client of `vibes mcp`.

Run by the ignored Rust test `the_official_python_sdk_lists_and_calls_every_tool`
(crates/vibes/tests/mcp.rs) with the venv `.ci/run` makes:

    python client.py VIBES_BIN CONFIG DATA_DIR

over a data dir holding the example session, the `sample-project` transcripts and three
copies of the claude-stream recording. Lists the tools, calls each one over stdio and
checks what it answers, then does the same over streamable HTTP with a bearer token.
Prints `ok <tool>` per tool; any failed check raises.
"""

import asyncio
import json
import os
import re
import subprocess
import sys

import httpx2
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

EXAMPLE = "5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04"
TOOLS = {
    "search_events",
    "list_sessions",
    "session_summary",
    "recent_failures",
    "capability_gaps",
    "gap_details",
    "usage",
}


def structured(result, tool):
    assert not result.is_error, f"{tool}: {result.content}"
    data = result.structured_content
    assert isinstance(data, dict), f"{tool}: no structured content"
    # The text content carries the same JSON for clients that read text only.
    assert json.loads(result.content[0].text) == data, tool
    return data


async def exercise(session, label):
    tools = await session.list_tools()
    names = {t.name for t in tools.tools}
    assert names == TOOLS, names
    for t in tools.tools:
        assert t.input_schema.get("type") == "object", t

    sessions = structured(await session.call_tool("list_sessions", {"limit": 50}), "list_sessions")
    ids = [s["session_id"] for s in sessions["sessions"]]
    assert EXAMPLE in ids, ids
    print(f"ok list_sessions ({label}: {len(ids)} sessions)")

    summary = structured(
        await session.call_tool("session_summary", {"session_id": EXAMPLE}), "session_summary"
    )
    assert summary["session"]["turns"] == 14, summary["session"]
    assert summary["failed_tool_calls_total"] == 2, summary
    assert summary["failed_tool_calls"][1]["kind"] == "edit_mismatch", summary
    print(f"ok session_summary ({label})")

    events = structured(
        await session.call_tool(
            "search_events",
            {"types": ["claude.tool_*"], "session_id": EXAMPLE, "limit": 10},
        ),
        "search_events",
    )
    assert events["returned"] == 10 and events["next_offset"] == 10, events
    rest = structured(
        await session.call_tool(
            "search_events",
            {"types": ["claude.tool_*"], "session_id": EXAMPLE, "limit": 10, "offset": 10},
        ),
        "search_events",
    )
    assert rest["returned"] == 8 and rest["next_offset"] is None, rest
    print(f"ok search_events ({label})")

    failures = structured(
        await session.call_tool("recent_failures", {"head": "make lint-fix", "limit": 50}),
        "recent_failures",
    )
    assert len(failures["failures"]) == 9, failures
    assert all(f["tool"] == "Bash" for f in failures["failures"]), failures
    print(f"ok recent_failures ({label})")

    gaps = structured(await session.call_tool("capability_gaps", {}), "capability_gaps")
    assert len(gaps["gaps"]) == 4, gaps
    print(f"ok capability_gaps ({label})")

    mkdir = next(g for g in gaps["gaps"] if g["head"] == "mkdir")
    gap = structured(await session.call_tool("gap_details", {"gap_id": mkdir["id"]}), "gap_details")
    assert gap["kind"] == "permission_denied", gap
    assert any(s["text"] == "Bash(mkdir:*)" for s in gap["solutions"]), gap
    print(f"ok gap_details ({label})")

    usage = structured(await session.call_tool("usage", {"by": "model"}), "usage")
    assert usage["rows"][0]["model"] == "claude-sonnet-4-20250514", usage
    assert usage["totals"]["api_calls"] == 170, usage
    print(f"ok usage ({label})")

    bad = await session.call_tool("search_events", {"limit": 0})
    assert bad.is_error, bad
    assert "limit 0 is out of range" in bad.content[0].text, bad.content
    still = structured(await session.call_tool("list_sessions", {"limit": 1}), "list_sessions")
    assert still["returned"] == 1

    resource = await session.read_resource(f"vibes://sessions/{EXAMPLE}")
    assert json.loads(resource.contents[0].text)["session"]["session_id"] == EXAMPLE


async def over_stdio(vibes, config, data_dir):
    params = StdioServerParameters(
        command=vibes,
        args=["--config", config, "--data-dir", data_dir, "mcp"],
        env={"HOME": os.environ.get("HOME", "/tmp"), "RUST_LOG": "warn"},
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "vibes", init
            assert "recent_failures" in (init.instructions or ""), init
            await exercise(session, "stdio")


async def over_http(vibes, config, data_dir):
    server = subprocess.Popen(
        [vibes, "--config", config, "--data-dir", data_dir, "mcp", "--http", "127.0.0.1:0", "--new-token"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={"HOME": os.environ.get("HOME", "/tmp"), "PATH": os.environ.get("PATH", ""), "RUST_LOG": "warn"},
    )
    try:
        url = None
        while url is None:
            line = server.stderr.readline()
            assert line, "vibes mcp --http printed no address"
            found = re.search(r"http://\S+/mcp", line)
            url = found.group(0) if found else None
        with open(os.path.join(data_dir, "mcp-token")) as f:
            token = f.read().strip()
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    await exercise(session, "http")
    finally:
        server.terminate()
        server.wait(timeout=10)
        os.remove(os.path.join(data_dir, "mcp-token"))


def main():
    vibes, config, data_dir = sys.argv[1:4]
    asyncio.run(over_stdio(vibes, config, data_dir))
    asyncio.run(over_http(vibes, config, data_dir))


if __name__ == "__main__":
    main()
