"""Deterministic tool choice: which built-in tools a message asks for, and with what.

The tiny default model cannot be trusted to emit tool calls, so the tool branch asks
this module instead: plain patterns over the message (English and Chinese), the same
answer every time, testable as a table. The intent only widens a rule where the
classifier knows more (a bare ``pkg.func 怎么用`` is a help request in SAGE_CODING).

Arithmetic extraction is a small tokenizer and state machine, not one regex: it cuts
the text into well-formed ``operand (op operand)*`` runs, then drops runs glued to
letters, paths or other operators (``v1.2+3``, ``a*2 + 3``), dates (``2024-05-01``),
version numbers (``3.11.2``) and runs whose only operators are ``-`` or ``/`` unless a
trigger such as "compute"/"计算"/"等于多少" stands right next to them (``pages 10-20``
and ``16/9`` are not questions).
"""

from __future__ import annotations

import re
import unicodedata

from studio_nb.errors import ToolError
from studio_nb.services.intent.types import Intent
from studio_nb.services.tools.calculator import FUNCTIONS, MAX_EXPRESSION_CHARS, normalize

INTENTS = tuple(i.value for i in Intent)
MAX_CALCULATIONS = 3

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+"
_QUOTED = r"\"([^\"\n]+)\"|'([^'\n]+)'|`([^`\n]+)`"
_BARE_PATH = r"([A-Za-z0-9_~][A-Za-z0-9_./~\-]*)"
_FILE_PATH = r"([A-Za-z0-9_~./\-]*[A-Za-z0-9_]\.[A-Za-z0-9]+)"  # has an extension


def select_tool_calls(intent: str, text: str) -> list[tuple[str, dict]]:
    """The tool calls ``text`` asks for, in a fixed order; ``[]`` when none applies."""
    name = str(getattr(intent, "value", intent)).upper()
    if name not in INTENTS:
        raise ToolError(f"unknown intent {intent!r}; expected one of {', '.join(INTENTS)}")
    if not isinstance(text, str) or not text.strip():
        return []
    text = unicodedata.normalize("NFKC", text)
    calls: list[tuple[str, dict]] = [("calculator", {"expression": e}) for e in find_expressions(text)]
    if _wants_time(text):
        calls.append(("datetime_now", {"timezone": _timezone(text)}))
    if _any(_DOMAIN_PATTERNS, text):
        calls.append(("list_domains", {}))
    target = _help_target(text, coding=name == "SAGE_CODING")
    if target:
        calls.append(("python_help", {"object": target}))
    if not _HOW_TO.search(text):  # "how do I list files in Python" asks for code, not a listing
        path = _first_group(_READ_PATTERNS, text)
        if path:
            calls.append(("read_file", {"path": path}))
        listing = _list_request(text)
        if listing is not None:
            calls.append(("list_files", listing))
    return calls


# --- arithmetic -----------------------------------------------------------------------

_FN_NAMES = "|".join(sorted(FUNCTIONS, key=len, reverse=True))
_TOKEN = re.compile(
    rf"(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<fn>\b(?:{_FN_NAMES})(?=\s*\())|(?P<const>\bpi\b|π)"
    r"|(?P<op>\*\*|//|[-+*/%^×÷])|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)"
)
_GLUE = re.compile(r"[A-Za-z0-9_.:/\\*+\-%^=<>!&|@#$]")
_OPERATOR_CHARS = "*/+-%^×÷"
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}([-/.]\d{1,2})?|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_BEFORE = re.compile(
    r"(?:compute|calculate|calc|evaluate|eval|what's|what\s+is|how\s+much\s+is|solve|计算|算一下|算算|算|求|"
    r"等于多少)\s*[:]?\s*$", re.I)
_AFTER = re.compile(r"^\s*(?:=|等于|是多少|是几|得多少|\?)")
_FENCED = re.compile(r"```.*?(```|$)", re.S)


def find_expressions(text: str) -> list[str]:
    """Arithmetic expressions in ``text`` worth handing to the calculator (see module doc)."""
    text = _FENCED.sub(lambda m: " " * len(m.group(0)), text)  # code blocks are not questions
    found: list[str] = []
    for start, end in _runs(text):
        expr = " ".join(text[start:end].split())
        if len(expr) > MAX_EXPRESSION_CHARS or _DATE.fullmatch(expr.replace(" ", "")) or _glued(text, start, end):
            continue
        ops = set(re.findall(r"\*\*|//|[-+*/%^×÷]|\w+\(", expr.lstrip("-+")))
        weak = ops <= {"-", "/", "//"}
        if weak and not (_BEFORE.search(text[:start]) or _AFTER.match(text[end:])):
            continue
        expr = normalize(expr.replace("π", "pi"))
        if expr not in found:
            found.append(expr)
    return found[:MAX_CALCULATIONS]


def _runs(text: str) -> list[tuple[int, int]]:
    """Spans of well-formed ``operand (op operand)*`` token runs with at least one operator."""
    spans: list[tuple[int, int]] = []
    start = last_end = good_end = None
    expect_operand, depth, n_ops = True, 0, 0

    def close() -> None:
        if start is not None and good_end is not None and n_ops and depth == 0:
            spans.append((start, good_end))

    for m in _TOKEN.finditer(text):
        kind, tok = m.lastgroup, m.group()
        gap = text[last_end:m.start()] if last_end is not None else ""
        if start is not None and gap.strip():  # something else between tokens ends the run
            close()
            start = None
        if start is None:
            if kind not in ("num", "const", "fn", "lp") and tok not in ("-", "+"):
                last_end = m.end()
                continue
            start, good_end, expect_operand, depth, n_ops = m.start(), None, True, 0, 0
        ok = (
            (expect_operand and (kind in ("num", "const", "fn", "lp") or tok in ("-", "+")))
            or (not expect_operand and (kind == "op" or (kind == "rp" and depth > 0) or (kind == "comma" and depth > 0)))
        )
        if not ok:
            close()
            start = None
            if kind in ("num", "const", "fn", "lp") or tok in ("-", "+"):
                start, good_end, expect_operand, depth, n_ops = m.start(), None, True, 0, 0
            else:
                last_end = m.end()
                continue
        if kind == "lp":
            depth += 1
        elif kind == "rp":
            depth -= 1
        elif kind == "fn":
            n_ops += 1
        elif kind == "op" and not expect_operand:
            n_ops += 1
        expect_operand = kind in ("op", "lp", "fn", "comma")
        if not expect_operand and depth == 0:
            good_end = m.end()
        last_end = m.end()
    close()
    return spans


def _glued(text: str, start: int, end: int) -> bool:
    """True when the run touches a word, path or version (``v1.2+3``, ``3.11.2``) or sits
    next to another operator (``a*2 + 3``), i.e. it is a piece of something bigger."""
    before, after = text[:start], text[end:]
    if before and _GLUE.fullmatch(before[-1]):
        return True
    if after and _GLUE.fullmatch(after[0]) and after[0] != "=":
        # "3+4." ends a sentence; "3.11.2" and "12:30" go on
        if after[0] not in ".:" or after[1:2].isalnum():
            return True
    before, after = before.rstrip(" "), after.lstrip(" ")
    return bool(before and before[-1] in _OPERATOR_CHARS) or bool(after and after[0] in _OPERATOR_CHARS)


# --- other tools ----------------------------------------------------------------------

_TIME_PATTERNS = [
    re.compile(r"\bwhat\s+(?:time|day|date)\s+is\s+(?:it|today)\b", re.I),
    re.compile(r"\bwhat(?:'s|\s+is)\s+(?:the\s+)?(?:current\s+)?(?:time|date|day)\b(?!\s+complexity)"
               r"(?:\s+(?:now|today|in\b))?(?![\w\s]*\bof\b)", re.I),
    re.compile(r"\b(?:current|today's)\s+(?:time|date)\b|\btime\s+now\b|\bdate\s+today\b", re.I),
    re.compile(r"现在几点|几点了|(?:现在|当前)(?:的)?(?:时间|日期)|今天(?:是)?(?:几号|几月几号|星期几|周几|礼拜几)"
               r"|今天(?:的)?日期|现在是什么时候|什么时间了|北京时间"),
]
_ZONES = {"北京": "Asia/Shanghai", "上海": "Asia/Shanghai", "beijing": "Asia/Shanghai", "shanghai": "Asia/Shanghai",
          "东京": "Asia/Tokyo", "tokyo": "Asia/Tokyo", "london": "Europe/London", "伦敦": "Europe/London",
          "new york": "America/New_York", "纽约": "America/New_York", "paris": "Europe/Paris"}
_IANA = re.compile(r"\b((?:Africa|America|Asia|Atlantic|Australia|Europe|Pacific|Indian)/[A-Z][A-Za-z_]+)\b|\b(UTC|GMT)\b")


def _wants_time(text: str) -> bool:
    return _any(_TIME_PATTERNS, text)


def _timezone(text: str) -> str:
    m = _IANA.search(text)
    if m:
        return m.group(1) or "UTC"
    low = text.lower()
    for key, zone in _ZONES.items():
        if key in low:
            return zone
    return "UTC"


_DOMAIN_PATTERNS = [
    re.compile(r"\b(?:list|show|which|what)\b[\w\s]{0,30}?\b(?:knowledge\s+)?(?:domains|knowledge\s*bases)\b", re.I),
    re.compile(r"\bavailable\s+(?:knowledge\s+)?(?:domains|knowledge\s*bases)\b", re.I),
    re.compile(r"(?:有哪些|有什么|列出|列举|显示)(?:所有)?(?:的)?(?:知识库|知识领域|领域)|知识库(?:列表|有哪些)"),
]

_HELP_PATTERNS = [
    re.compile(rf"\bhelp\(\s*({_NAME})\s*\)"),
    re.compile(rf"\b(?:help\s+(?:on|for|with)|signature\s+of|docstring\s+(?:of|for)|docs?\s+(?:of|for)|"
               rf"documentation\s+(?:of|for))\s+`?({_NAME})`?", re.I),
    re.compile(rf"\bhow\s+(?:do\s+i|to)\s+use\s+`?({_DOTTED})`?", re.I),
    re.compile(rf"`?({_DOTTED})`?\s*(?:的)?\s*(?:签名|文档|用法|参数|帮助)"),
    re.compile(rf"(?:查看|查一下|解释)\s*`?({_NAME})`?\s*(?:的)?\s*(?:签名|文档|用法|参数)"),
]
_CODING_HELP = re.compile(rf"`?({_DOTTED})`?\s*(?:怎么用|如何使用|是做什么的|是什么)|\bwhat\s+does\s+`?({_DOTTED})`?\s+do\b", re.I)


def _help_target(text: str, coding: bool) -> str | None:
    return _first_group(_HELP_PATTERNS + ([_CODING_HELP] if coding else []), text)


_READ_PATTERNS = [
    re.compile(rf"\b(?:read|open|show|cat|display|print)\s+(?:me\s+)?(?:the\s+)?(?:contents?\s+of\s+)?(?:the\s+)?"
               rf"file\s+(?:{_QUOTED}|{_BARE_PATH})", re.I),
    re.compile(rf"\b(?:read|open|cat)\s+(?:the\s+)?(?:{_QUOTED}|{_FILE_PATH})", re.I),
    re.compile(rf"(?:读取|读一下|读|打开|查看|显示|看看)\s*(?:一下)?\s*(?:文件)\s*(?:{_QUOTED}|{_BARE_PATH})"),
    re.compile(rf"(?:读取|读一下|打开|查看|看看)\s*(?:一下)?\s*(?:{_QUOTED}|{_FILE_PATH})"),
]
_HOW_TO = re.compile(r"\bhow\s+(?:do\s+(?:i|you|we)|to|can\s+i|would\s+i)\b|如何|怎么|怎样|用代码", re.I)
_LIST_PATTERNS = [
    re.compile(r"\b(?:list|show)\s+(?:me\s+)?(?:all\s+)?(?:the\s+)?(?:(\*\.\w+)\s+)?files\b"
               rf"(?:\s+(?:in|under)\s+(?:the\s+)?(?:{_QUOTED}|{_BARE_PATH}))?", re.I),
    re.compile(rf"\bwhat\s+files\b.*?(?:\b(?:in|under)\s+(?:the\s+)?(?:{_QUOTED}|{_BARE_PATH}))?", re.I),
    re.compile(rf"^\s*ls(?:\s+(?:{_QUOTED}|{_BARE_PATH}))?\s*$"),
    re.compile(rf"(?:列出|显示|看看)\s*(?:{_QUOTED}|{_BARE_PATH})?\s*(?:目录|文件夹)?\s*(?:下|里|中)?(?:的)?(?:所有)?(?:的)?文件"),
    re.compile(rf"(?:{_QUOTED}|{_BARE_PATH})?\s*(?:目录|文件夹)?\s*(?:下|里|中)?有(?:哪些|什么)文件|文件列表"),
]


def _list_request(text: str) -> dict | None:
    for pattern in _LIST_PATTERNS:
        m = pattern.search(text)
        if m:
            groups = [g for g in m.groups() if g]
            glob = next((g for g in groups if g.startswith("*.")), None)
            path = next((_clean_path(g) for g in groups if not g.startswith("*.")), None)
            args: dict = {}
            if path and path != ".":
                args["path"] = path
            if glob:
                args["pattern"] = glob
            return args
    return None


def _first_group(patterns: list[re.Pattern], text: str) -> str | None:
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            value = next((g for g in m.groups() if g), None)
            if value:
                return _clean_path(value)
    return None


def _clean_path(value: str) -> str:
    return value.strip().rstrip(".,;:!?)")


def _any(patterns: list[re.Pattern], text: str) -> bool:
    return any(p.search(text) for p in patterns)
