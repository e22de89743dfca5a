import pytest

from studio_nb.errors import ConfigError
from studio_nb.services.intent import Intent, IntentResult
from studio_nb.services.intent.domains import DomainRouter


def test_intent_parse_accepts_names_in_any_case_and_rejects_others():
    assert Intent.parse("sage_coding") is Intent.SAGE_CODING
    assert Intent.parse(Intent.GENERAL_CHAT) is Intent.GENERAL_CHAT
    with pytest.raises(ConfigError) as exc:
        Intent.parse("SMALL_TALK")
    assert exc.value.code == "bad_config" and "GENERAL_CHAT" in str(exc.value)


def test_result_to_dict_is_json_shaped():
    r = IntentResult(Intent.GENERAL_CHAT, 0.9, (), ("hi",), "keyword", ({"stage": "keyword"},))
    d = r.to_dict()
    assert d["intent"] == "GENERAL_CHAT" and d["stages"] == [{"stage": "keyword"}]
    assert r.stage("keyword") == {"stage": "keyword"} and r.stage("llm") is None


@pytest.mark.parametrize(
    "text, intent, expected",
    [
        ("what is a ParallelGroup?", Intent.KNOWLEDGE_QUERY, ()),  # no domain named: every readable one
        ("how do I write the related work of a paper?", Intent.KNOWLEDGE_QUERY, ("research_guidance",)),
        ("我上传的文件里写了什么？", Intent.KNOWLEDGE_QUERY, ("user_uploads",)),
        ("write a map function", Intent.SAGE_CODING, ("examples", "sage_docs")),
        ("fix the code in my uploaded file", Intent.SAGE_CODING, ("examples", "sage_docs", "user_uploads")),
        ("hi", Intent.GENERAL_CHAT, ()),
        ("list the files about papers", Intent.SYSTEM_OPERATION, ()),
    ],
)
def test_routing(text, intent, expected):
    assert DomainRouter().route(text, intent) == expected


def test_add_domain_routes_by_name_and_keywords_and_validates():
    router = DomainRouter()
    router.add("k8s_notes", ["kubernetes", "集群"])
    assert router.route("how do I scale a kubernetes deployment?", Intent.KNOWLEDGE_QUERY) == ("k8s_notes",)
    assert router.route("集群怎么扩容？", Intent.KNOWLEDGE_QUERY) == ("k8s_notes",)
    assert router.route("what do my k8s notes say?", Intent.KNOWLEDGE_QUERY) == ("k8s_notes",)  # name, '_' as space
    for bad in ("", "has space", None, "x" * 65):
        with pytest.raises(ConfigError):
            router.add(bad)
    with pytest.raises(ConfigError):
        router.add("ok_name", ["", "fine"])


def test_restricted_domain_set_falls_back_to_what_exists():
    router = DomainRouter(["user_uploads", "papers"])
    assert router.names == ("user_uploads", "papers")
    # a knowledge query that names no domain is not restricted (every domain the user can read)
    assert router.route("what is an operator?", Intent.KNOWLEDGE_QUERY) == ()
    assert router.route("what do my papers say?", Intent.KNOWLEDGE_QUERY) == ("papers",)
    # sage_docs and examples are not known here: a code question is not restricted either
    assert router.route("write a map function", Intent.SAGE_CODING) == ()
    with pytest.raises(ConfigError):
        DomainRouter("sage_docs")
