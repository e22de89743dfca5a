"""Studio in jupyterlab-chat, over the chat's own WebSocket, against a real server."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.lab_chat.chat_client import BOT, ChatClient

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


def buttons(body: str) -> list[dict[str, Any]]:
    """The citation buttons' command arguments in a message body."""
    import html

    return [json.loads(html.unescape(a)) for a in re.findall(r'data-commandlinker-args="([^"]+)"', body)]


async def test_learn_then_ask_streams_evidence_then_synthesis_with_citation_buttons(chat_server: Any) -> None:
    alice = await ChatClient.connect(chat_server.port, "ask.chat", "alice")
    try:
        await alice.send("/learn docs")
        done = await alice.reply("Learned **docs**")
        assert "private to you" in done["body"]
        assert alice.updates[done["id"]] >= 2  # progress lines before the result
        await alice.send("SAGE 的 LocalEnvironment 和 RemoteEnvironment 有什么区别？")
        final = await alice.reply("<sub>")
        body = final["body"]
        # a Chinese question gets the cited evidence as its answer (synthesis_languages: en by default)
        assert body.index("**依据**") == 0 and "**回答**" not in body
        assert "docs/environments.md:L" in body
        cites = buttons(body)
        assert cites and all(c["path"] == "alice/docs/environments.md" for c in cites)
        # Markdown opens in its preview, which scrolls to a heading: the cited sections
        assert {"#RemoteEnvironment", "#LocalEnvironment"} <= {c["id"] for c in cites}
        assert alice.updates[final["id"]] >= 2  # the placeholder, then the evidence: it streamed
        # an English question: the model's checked synthesis (kept or dropped) streams in under the evidence
        await alice.send("What does a RemoteEnvironment run on?")
        english = await alice.reply("<sub>", other_than=(final["id"],))
        body = english["body"]
        synthesis = body.find("**Answer**") if "**Answer**" in body else body.find("dropped as unsupported")
        assert 0 <= body.index("**Evidence**") < synthesis
        assert alice.updates[english["id"]] >= 3  # placeholder, evidence, synthesis
    finally:
        await alice.close()


async def test_code_citation_opens_the_editor_at_the_line(chat_server: Any) -> None:
    alice = await ChatClient.connect(chat_server.port, "code.chat", "alice")
    try:
        await alice.send("/learn docs")
        await alice.reply("Learned **docs**")
        await alice.send("how does build_zebra_pipeline double the striped packets?")
        final = await alice.reply("<sub>")
        py = [c for c in buttons(final["body"]) if c["path"] == "alice/docs/zebra_pipeline.py"]
        assert py, final["body"]
        line = int(py[0]["id"].removeprefix("#line=")) + 1  # the editor's fragment is 0-based
        cited = re.search(r"zebra_pipeline\.py:L(\d+)-L(\d+)", final["body"])
        assert cited and int(cited.group(1)) == line
    finally:
        await alice.close()


async def test_sender_is_the_authenticated_user_not_the_frame(chat_server: Any) -> None:
    alice = await ChatClient.connect(chat_server.port, "spoof.chat", "alice")
    try:
        msg_id = await alice.send("hello", mention=False, sender={"username": "bob", "name": "bob"})
        stored = await alice.wait_for(lambda m: m["id"] == msg_id)
        assert stored["sender"] == "alice"
    finally:
        await alice.close()


async def test_shared_chat_each_user_sees_only_their_private_domains(chat_server: Any) -> None:
    alice = await ChatClient.connect(chat_server.port, "shared.chat", "alice")
    bob = await ChatClient.connect(chat_server.port, "shared.chat", "bob")
    try:
        await alice.send("/learn secret")
        await alice.reply("Learned **secret**")
        await bob.send("/learn secret --domain bob_secret")
        await bob.reply("Learned **secret** into domain `bob_secret`")
        await alice.send("which day is the quarterly llama report shipped?")
        a = await alice.wait_for(lambda m: m.get("sender") == BOT and "<sub>" in (m.get("body") or "")
                                 and "heron" in m["body"].lower())
        assert "otter" not in a["body"].lower() and "bob_secret" not in a["body"]
        await bob.wait_for(lambda m: m["id"] == a["id"] and "<sub>" in (m.get("body") or ""))  # bob sees it too
        seen = set(bob.messages)
        await bob.send("which day is the quarterly llama report shipped?")
        b = await bob.wait_for(lambda m: m["id"] not in seen and m.get("sender") == BOT
                               and "<sub>" in (m.get("body") or ""))
        assert "otter" in b["body"].lower() and "heron" not in b["body"].lower()
    finally:
        await alice.close()
        await bob.close()


async def test_attached_cell_is_evidence_cited_by_cell(chat_server: Any) -> None:
    alice = await ChatClient.connect(chat_server.port, "attach.chat", "alice")
    try:
        att = {"type": "notebook", "value": "alice/nb.ipynb", "cells": [{"id": "c3", "input_type": "code"}]}
        await alice.send("what does this cell compute?", attachments=[att])
        final = await alice.reply("<sub>")
        assert "**[1]** total = sum(range(10))  # C3 — `nb.ipynb:C3`" in final["body"]
    finally:
        await alice.close()


async def test_attachment_outside_the_root_is_not_read(chat_server: Any) -> None:
    alice = await ChatClient.connect(chat_server.port, "escape.chat", "alice")
    try:
        att = {"type": "file", "value": "../../../../etc/passwd"}
        await alice.send("what is in this file?", attachments=[att])
        final = await alice.reply("<sub>")
        assert "root:" not in final["body"]
    finally:
        await alice.close()


async def test_plain_words_get_the_command_and_unaddressed_messages_no_reply(chat_server: Any) -> None:
    alice = await ChatClient.connect(chat_server.port, "words.chat", "alice")
    try:
        await alice.send("the weather is nice", mention=False)
        await alice.send("delete my data.csv")
        hint = await alice.reply("/forget DOMAIN")
        assert "deletes nothing" in hint["body"]
        replies = [m for m in alice.messages.values() if m.get("sender") == BOT]
        assert len(replies) == 1
    finally:
        await alice.close()


async def test_mode_and_trace_commands(chat_server: Any) -> None:
    alice = await ChatClient.connect(chat_server.port, "mode.chat", "alice")
    try:
        await alice.send("/mode extractive")
        await alice.reply("now answers in `extractive` mode")
        await alice.send("what is LocalEnvironment?")
        final = await alice.reply("<sub>extractive")
        assert "**Answer**" not in final["body"] and "**回答**" not in final["body"]
        await alice.send("/trace")
        trace = await alice.reply("| `evidence` |")
        assert "llm_inference" not in trace["body"]  # extractive: no model ran
    finally:
        await alice.close()


async def test_a_notebook_attached_whole_is_each_of_its_cells(chat_server: Any) -> None:
    alice = await ChatClient.connect(chat_server.port, "whole.chat", "alice")
    try:
        await alice.send("what does the total add up to?", attachments=[{"type": "file", "value": "alice/nb.ipynb"}])
        final = await alice.wait_for(lambda m: m.get("sender") == BOT and ("<sub>" in (m.get("body") or "")
                                                                          or "**error**" in (m.get("body") or "")))
        body = final["body"]
        assert "**error**" not in body, body
        assert [f"nb.ipynb:C{i}" for i in (1, 2, 3)] == re.findall(r"nb\.ipynb:C\d", body)[:3]
    finally:
        await alice.close()
