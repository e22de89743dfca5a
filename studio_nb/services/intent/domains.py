"""Which knowledge domains a message should be searched in.

The intent decides whether we retrieve at all (chat and tool requests search nothing);
keywords decide where. Domains are open-ended: a user can ingest their own folder as a
new domain and register it here with ``add`` so that messages naming it reach it.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from studio_nb.errors import ConfigError
from studio_nb.services.intent.keywords import Rule, compile_rule
from studio_nb.services.intent.types import Intent

#: keywords that send a question to a domain (and only there). Not the product's name "sage":
#: nearly every question about SAGE says it, and the examples are as much about SAGE as the
#: docs — with it, "the hello SAGE-DB app" never reached the examples.
DEFAULT_DOMAINS: Mapping[str, tuple[str, ...]] = {
    "sage_docs": ("documentation", "docs", "environment", "localenvironment",
                  "remoteenvironment", "datastream", "jobmanager", "operator", "operators",
                  "neuromem", "gateway", "install", "installation", "architecture",
                  "文档", "安装", "架构", "算子", "环境"),
    "examples": ("example", "examples", "sample", "tutorial", "demo", "code example",
                 "示例", "例子", "样例", "教程", "示范"),
    "research_guidance": ("paper", "papers", "research", "literature", "related work", "survey",
                          "experiment", "experiments", "ablation", "baseline", "baselines",
                          "reviewer", "rebuttal", "thesis", "writing", "citation", "cite",
                          "论文", "研究", "文献", "综述", "实验", "基线", "审稿", "投稿", "写作",
                          "引言", "摘要", "开题"),
    "user_uploads": ("my file", "my files", "uploaded", "upload", "my pdf", "my notes",
                     "my document", "my documents", "上传", "我的文件", "我的笔记", "我的文档"),
}

# Where to look when no domain keyword fired, per intent. () is every domain the user can
# read: a question that names no domain may be about any of them ("what is hnswlib used
# for?" is answered by the bundled docs, "hello SAGE-DB app" by the examples).
FALLBACK = {
    Intent.KNOWLEDGE_QUERY: (),
    Intent.SAGE_CODING: ("examples", "sage_docs"),
}
_NAME = re.compile(r"^[A-Za-z0-9_\-\u3400-\u9fff]{1,64}$")


def check_domain_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"bad domain name {name!r}; use 1-64 letters, digits, '_' or '-' (e.g. 'my_papers')"
        )
    return name


class DomainRouter:
    """Maps (message, intent) to a tuple of domain names, in registration order."""

    def __init__(self, domains: Mapping[str, Iterable[str]] | Iterable[str] | None = None) -> None:
        self._rules: dict[str, list[Rule]] = {}
        if domains is None:
            domains = DEFAULT_DOMAINS
        if isinstance(domains, str):
            raise ConfigError("domains must be a list of names or a {name: keywords} mapping, not a str")
        items = domains.items() if isinstance(domains, Mapping) else ((d, DEFAULT_DOMAINS.get(d, ())) for d in domains)
        for name, keywords in items:
            self.add(name, keywords)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._rules)

    def add(self, name: str, keywords: Iterable[str] = ()) -> None:
        """Register ``name`` (or extend it); its own name, with '_' as spaces, is a keyword."""
        check_domain_name(name)
        if isinstance(keywords, str):
            keywords = (keywords,)
        terms = [name, name.replace("_", " "), *keywords]
        rules = self._rules.setdefault(name, [])
        have = {r.term for r in rules}
        for term in terms:
            if not isinstance(term, str) or not term.strip():
                raise ConfigError(f"domain {name!r}: keywords must be non-empty strings, got {term!r}")
            rule = compile_rule(term.strip(), Intent.KNOWLEDGE_QUERY, 1.0)
            if rule.term not in have:
                rules.append(rule)
                have.add(rule.term)

    def matches(self, text: str) -> dict[str, list[str]]:
        """Domain -> the keywords of it found in ``text``."""
        lowered = text.lower()
        found: dict[str, list[str]] = {}
        for name, rules in self._rules.items():
            hits = [h for h in (r.find(text, lowered) for r in rules) if h is not None]
            if hits:
                found[name] = hits
        return found

    def route(self, text: str, intent: Intent, matches: dict[str, list[str]] | None = None) -> tuple[str, ...]:
        """Domains to search: none for chat/tools; the matched ones, else the intent's fallback
        (``()`` for a knowledge question: every domain the user can read, see KnowledgeRAGOp)."""
        if intent not in FALLBACK:
            return ()
        matches = self.matches(text) if matches is None else matches
        chosen = list(matches)
        if intent is Intent.SAGE_CODING:  # code questions always look at the examples first
            fallback = [d for d in FALLBACK[intent] if d in self._rules]
            chosen = [d for d in fallback if d not in chosen] + chosen
        return tuple(chosen)
