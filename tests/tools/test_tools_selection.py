"""select_tool_calls as a bilingual table: what is selected, and what must not be."""

from __future__ import annotations

import pytest

from studio_nb.errors import ToolError
from studio_nb.services.tools import select_tool_calls

G, K, C, S = "GENERAL_CHAT", "KNOWLEDGE_QUERY", "SAGE_CODING", "SYSTEM_OPERATION"


@pytest.mark.parametrize("intent, text, expected", [
    # arithmetic, English and Chinese
    (G, "compute 17*23", [("calculator", {"expression": "17*23"})]),
    (G, "计算 17*23 等于多少", [("calculator", {"expression": "17*23"})]),
    (G, "计算17*23", [("calculator", {"expression": "17*23"})]),
    (G, "what is (3+4)**2", [("calculator", {"expression": "(3+4)**2"})]),
    (G, "What is 2^10?", [("calculator", {"expression": "2**10"})]),
    (G, "what is 10-3", [("calculator", {"expression": "10-3"})]),
    (G, "what's -3*4?", [("calculator", {"expression": "-3*4"})]),
    (G, "evaluate sqrt(2)*pi", [("calculator", {"expression": "sqrt(2)*pi"})]),
    (G, "（3＋4）×2 是多少", [("calculator", {"expression": "(3+4)*2"})]),
    (G, "算一下 100/4", [("calculator", {"expression": "100/4"})]),
    (G, "100 / 4 = ?", [("calculator", {"expression": "100 / 4"})]),
    (G, "1+1", [("calculator", {"expression": "1+1"})]),
    (K, "What is 3+4.", [("calculator", {"expression": "3+4"})]),
    (G, "2*3 and 4*5", [("calculator", {"expression": "2*3"}), ("calculator", {"expression": "4*5"})]),
    # things that look like arithmetic but are not questions about it
    (G, "SAGE was released on 2024-05-01", []),
    (G, "what is 2024-05-01", []),
    (G, "日期是 2024/5/1", []),
    (G, "what is new in python 3.11 - 3.12", []),
    (G, "upgrade to version 1.2.3", []),
    (G, "what is 3.11.2+1", []),
    (G, "read pages 10-20", []),
    (G, "the screen ratio is 16/9", []),
    (G, "call 010-12345678", []),
    (G, "meeting at 12:30-13:00", []),
    (G, "SAGE (2020-2023) paper", []),
    (G, "v1.2+3", []),
    (G, "I have 3+ years of experience", []),
    (C, "x = a*2 + 3", []),
    (C, "```python\ny = 2*3\n```", []),
    (G, "hello there", []),
    (G, "你好，介绍一下你自己", []),
    # date and time
    (G, "what time is it?", [("datetime_now", {"timezone": "UTC"})]),
    (G, "What's the date today", [("datetime_now", {"timezone": "UTC"})]),
    (G, "现在几点了", [("datetime_now", {"timezone": "UTC"})]),
    (G, "今天星期几", [("datetime_now", {"timezone": "UTC"})]),
    (G, "北京时间现在几点", [("datetime_now", {"timezone": "Asia/Shanghai"})]),
    (G, "what time is it in Europe/London", [("datetime_now", {"timezone": "Europe/London"})]),
    (C, "what is the time complexity of quicksort", []),
    # knowledge domains
    (K, "list domains", [("list_domains", {})]),
    (K, "Which knowledge bases are available?", [("list_domains", {})]),
    (K, "有哪些知识库", [("list_domains", {})]),
    (K, "知识库列表", [("list_domains", {})]),
    # python help
    (C, "help on json.dumps", [("python_help", {"object": "json.dumps"})]),
    (C, "signature of os.path.join", [("python_help", {"object": "os.path.join"})]),
    (G, "help(zip)", [("python_help", {"object": "zip"})]),
    (C, "json.loads 的签名", [("python_help", {"object": "json.loads"})]),
    (C, "json.loads 怎么用", [("python_help", {"object": "json.loads"})]),
    (G, "json.loads 怎么用", []),  # only a coding question makes a bare name a help request
    # files
    (S, "read file README.md", [("read_file", {"path": "README.md"})]),
    (S, "open docs/intro.md", [("read_file", {"path": "docs/intro.md"})]),
    (S, 'show me the file "my notes.txt"', [("read_file", {"path": "my notes.txt"})]),
    (S, "读取文件 README.md 的内容", [("read_file", {"path": "README.md"})]),
    (S, "打开 config/app.yaml", [("read_file", {"path": "config/app.yaml"})]),
    (S, "list files", [("list_files", {})]),
    (S, "list *.py files in src", [("list_files", {"path": "src", "pattern": "*.py"})]),
    (S, "列出所有文件", [("list_files", {})]),
    (S, "docs 目录下有哪些文件", [("list_files", {"path": "docs"})]),
    (C, "how do I list files in python?", []),
    (C, "如何用 Python 读取文件 data.csv", []),
])
def test_selection_table(intent, text, expected):
    assert select_tool_calls(intent, text) == expected


def test_several_tools_in_one_message_come_in_a_fixed_order():
    assert select_tool_calls(G, "现在几点了？顺便计算 6*7") == [
        ("calculator", {"expression": "6*7"}), ("datetime_now", {"timezone": "UTC"})]


def test_intent_is_checked_and_enum_values_work():
    from enum import Enum

    class Intent(str, Enum):
        SAGE_CODING = "SAGE_CODING"

    assert select_tool_calls(Intent.SAGE_CODING, "json.loads 怎么用") == [("python_help", {"object": "json.loads"})]
    assert select_tool_calls("general_chat", "1+1") == [("calculator", {"expression": "1+1"})]
    with pytest.raises(ToolError, match="unknown intent 'CHITCHAT'"):
        select_tool_calls("CHITCHAT", "1+1")
    assert select_tool_calls(G, "   ") == []
