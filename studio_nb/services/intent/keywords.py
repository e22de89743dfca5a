"""Bilingual keyword/regex rules with weights: the fast, explainable first stage.

Why rules at all when we have embeddings: the default embedding model is English-only,
so for Chinese messages a handful of substrings ("报错", "几点", "你好") carries most of
the signal, and rules are the only stage that can spot arithmetic like ``17*23``.
Chinese has no spaces, so CJK terms match as substrings; Latin terms match on word
boundaries, case-insensitively; a term starting with ``re:`` is a raw regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from studio_nb.services.intent.types import INTENTS, Intent
from studio_nb.services.text import CJK

K, C, S, G = Intent.KNOWLEDGE_QUERY, Intent.SAGE_CODING, Intent.SYSTEM_OPERATION, Intent.GENERAL_CHAT

# Pseudo-count added to every intent before normalising: a message with no hits gets a
# uniform distribution (no evidence), a single weak hit does not claim certainty.
SMOOTHING = 0.25

_NUM = r"\(?\s*\d+(?:\.\d+)?\s*\)?"
_ARITH = r"re:(?<![\d.\-/])(?=[\d(])(?!\d{4}[-/]\d\d?[-/]\d\d?)" + _NUM + r"(?:\s*(?:\*\*|[-+*/×÷^%xX])\s*" + _NUM + ")+"

# intent -> [(weight, terms)]. Weights: 3 = nearly decisive, 2 = strong, 1 = hint, 0.5 = faint.
DEFAULT_RULES: Mapping[Intent, list[tuple[float, list[str]]]] = {
    S: [
        (3.0, [_ARITH, "square root", "sqrt", "平方根",
               "乘以", "除以", "加上", "减去", "等于多少", "算一下", "算算", "计算一下",
               "what time", "time is it", "current time", "today's date", "date today", "what day",
               "现在几点", "几点了", "几月几号", "几号", "星期几", "周几",
               "list files", "list the files", "list my files", "clear history", "clear my history",
               "clear the history", "clear the chat", "clear my chat", "knowledge domains",
               "list domains", "知识域", "聊天记录", "历史记录", "对话记录", "清空", "重建索引",
               r"re:(?:重建|重新建|刷新).{0,24}索引",
               # Python help on a name: help(x), "the signature of", 帮助文档, 签名
               r"re:\bhelp\s*\(", "帮助文档", "docstring of", "signature of"]),
        (2.0, [r"re:^\s*(?:please\s+)?(?:list|open|read|clear|delete|remove|ingest|re-?index|rebuild|reset|wipe|"
               r"calculate|compute)\b", r"re:^\s*(?:请|帮我|麻烦)?(?:列出|打开|读取|清空|清除|删除|移除|导入|重建|重置|计算)",
               "calculate", "compute", "how much is", "计算", "ingest", "re-index", "reindex",
               "rebuild the index", "workspace", "directory", "folder", "files in", "read the file",
               "open the file", "show me the file", "contents of", "delete", "reset", "start over",
               "knowledge base", "domains", "文件夹", "目录", "工作区", "列出", "读取", "打开",
               "导入", "索引", "知识库", "删除", "重置", "文件列表", "有哪些文件", "会话"]),
        (1.0, [r"re:[\w./~-]+\.(?:txt|md|csv|json|ya?ml|log|toml|ipynb|pdf)\b", "read", "open",
               "list", "show me", "session", "history", "今天", "现在", "日期", "时间", "文件",
               "查看", "执行", "run the tool", "status", "状态", "domain", "签名"]),
    ],
    C: [
        (3.0, [r"re:\b[A-Z]\w*(?:Error|Exception)\b", "traceback", "stack trace", "```",
               r"re:\bdef \w+\(", r"re:\blambda\b", "write a function", "write code", "show me code",
               "code for", "example code", "sample code",
               "帮我写", "写一个", "写个", "代码", "报错", "跑不起来", "跑不通", "运行不了"]),
        (2.0, ["write", "implement", "code", "function", "snippet", "script", "bug", "debug", "fix",
               "refactor", "optimize", "unit test", "unit tests", "pytest", "decorator", "class",
               "error", "exception", "crash", "crashes", "hang", "hangs", "doesn't work",
               "not working", "compile", "syntax", "comprehension", "loop", "my pipeline", "my operator",
               "my script", "my program", "in python", "python", "函数", "实现", "编写", "错误", "异常", "调试", "修复", "重构", "优化", "脚本",
               "单元测试", "测试用例", "装饰器", "循环", "推导式", "出错", "自定义", "程序", "怎么改",
               "改成", "改写", "给出代码", "示例代码",
               # tests and bug reports ("it receives nothing", "mock the client")
               "mock", "tests", "test case", "单测", "帮我看看", "没收到", "收不到", "不生效", "不起作用",
               "type hints", "type hint", "docstrings", "类型提示", "类型注解", "文档字符串", "加上日志", "打日志"]),
        (1.0, [r"re:\w+\.\w+\(", r"re:\w+\([^)]*\)", "import", "return", "api", "example of",
               "日志", "添加", "加上",
               "how do i", "how can i", "show me how", "build a", "create a", "怎么写", "如何写", "调用", "搭建", "类", "方法", "模块", "接口", "用法"]),
    ],
    K: [
        (2.0, ["what is", "what are", "what's the difference", "difference between", "what does",
               "how does", "explain", "describe", "documentation", "docs", "concept", "overview",
               "architecture", "according to", "paper", "papers", "literature", "related work",
               "research", "experiment", "experiments", "ablation", "baseline", "baselines",
               "reviewer", "thesis", "survey", "uploaded", "my notes",
               "什么是", "是什么", "什么叫", "区别", "有什么不同", "有何不同", "有何区别", "不同之处", "介绍一下",
               "原理", "概念", "文档",
               "架构", "作用", "含义", "论文", "文献", "综述", "实验", "研究", "基线", "审稿", "投稿",
               "我上传", "上传的", "引言", "摘要"]),
        (1.0, ["why", "which", "when should", "support", "supports", "tell me about", "where can i find",
               "install", "installation", "default", "compare", "versus", "vs", "mean",
               "sage", "environment", "datastream", "operator", "operators", "jobmanager", "neuromem",
               "gateway", "service", "memory", "stream", "streams", "state", "stateful", "port",
               "为什么", "哪些", "支持", "安装", "依赖", "配置", "默认", "如何", "怎么", "怎样",
               "有没有", "负责", "主要"]),
        (0.5, [r"re:[?？]\s*$", "什么", "吗"]),
    ],
    G: [
        (3.0, [r"re:^\s*(?:hi|hello|hey|yo|howdy|hiya)\b", "good morning", "good afternoon",
               "good evening", "good night", "how are you", "how's it going", "thanks", "thank you",
               "thx", "joke", "something funny", "who are you", "bye", "goodbye", "see you",
               "你好", "您好", "哈喽", "早上好", "下午好", "晚上好", "晚安", "谢谢", "多谢", "再见",
               "拜拜", "笑话", "你是谁", "辛苦了", "哈哈"]),
        (2.0, ["lol", "haha", "awesome", "appreciate", "nice", "cool", "great", "tired", "bored",
               "weekend", "favorite", "favourite", "movie", "music", "book", "lunch", "dinner",
               "weather", "poem", "story", "sing", "your name", "what can you do", "feeling",
               "嗨", "感谢", "你叫什么", "你能做什么", "天气", "吃饭", "吃什么", "聊聊", "聊天",
               "无聊", "累", "周末", "电影", "音乐", "心情", "故事", "好玩", "诗", "快乐", "开心", "好难",
               "最近在学", "these days", "it's hard"]),
        (1.0, [r"re:^\s*(?:ok|okay|sure|got it|great|cool)\b", "hi", "hello", "hey", "you",
               r"re:[:;]-?[)D(]|[😀-🙏]", "好的", "明白了", "不错", "厉害", "你", "最近"]),
    ],
}

@dataclass(frozen=True)
class Rule:
    term: str
    intent: Intent
    weight: float
    pattern: re.Pattern | None  # None: plain CJK substring

    def find(self, text: str, lowered: str) -> str | None:
        """The matched keyword (the term, or the matched text for a regex), or None."""
        if self.pattern is None:
            return self.term if self.term in lowered else None
        m = self.pattern.search(text)
        if m is None:
            return None
        return m.group(0).strip() if self.term.startswith("re:") else self.term


def compile_rule(term: str, intent: Intent, weight: float) -> Rule:
    """Build one rule; CJK terms are substrings, Latin terms respect word boundaries."""
    if term.startswith("re:"):
        return Rule(term, intent, weight, re.compile(term[3:], re.IGNORECASE | re.MULTILINE))
    if CJK.search(term):
        return Rule(term.lower(), intent, weight, None)
    pat = r"(?<![A-Za-z0-9_])" + re.escape(term) + r"(?![A-Za-z0-9_])"
    return Rule(term, intent, weight, re.compile(pat, re.IGNORECASE))


@dataclass(frozen=True)
class KeywordScores:
    raw: dict[Intent, float]  # summed weights of the rules that fired
    scores: dict[Intent, float]  # smoothed distribution over the four intents (sums to 1)
    matched: tuple[tuple[str, Intent, float], ...]

    @property
    def any_hit(self) -> bool:
        return bool(self.matched)

    @property
    def top(self) -> Intent:
        return max(INTENTS, key=lambda i: (self.scores[i], -INTENTS.index(i)))


class KeywordScorer:
    """Scores a message against weighted rules; cheap to build, pure, thread-safe to call."""

    def __init__(self, rules: Mapping[Intent, Iterable[tuple[float, Iterable[str]]]] | None = None) -> None:
        table = DEFAULT_RULES if rules is None else rules
        self._rules: list[Rule] = [
            compile_rule(term, intent, weight)
            for intent, groups in table.items()
            for weight, terms in groups
            for term in terms
        ]

    def add_terms(self, intent: Intent, terms: Iterable[str], weight: float = 1.0) -> None:
        """Extend the rule table (e.g. with a newly registered domain's keywords)."""
        known = {(r.term, r.intent) for r in self._rules}
        for term in terms:
            rule = compile_rule(term, intent, weight)
            if (rule.term, intent) not in known:
                self._rules.append(rule)
                known.add((rule.term, intent))

    def score(self, text: str) -> KeywordScores:
        lowered = text.lower()
        raw = dict.fromkeys(INTENTS, 0.0)
        matched = []
        for rule in self._rules:
            hit = rule.find(text, lowered)
            if hit is not None:
                raw[rule.intent] += rule.weight
                matched.append((hit, rule.intent, rule.weight))
        total = sum(raw.values()) + SMOOTHING * len(INTENTS)
        scores = {i: (raw[i] + SMOOTHING) / total for i in INTENTS}
        return KeywordScores(raw, scores, tuple(matched))
