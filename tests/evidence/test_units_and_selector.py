"""Evidence units (line numbers, tables, lead-ins, code) and the selector's choices, as tables of cases."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from studio_nb.services.evidence import EvidenceSelector, split_units

DOC = """## Install
SAGE needs Python 3.10 or newer. Install the core packages with:
```bash
pip install intsage-kernel
```
| option | default | meaning |
|---|---|---|
| `port` | 8080 | where the gateway listens |
| `workers` | 4 | processes that serve requests |

A LocalEnvironment runs the pipeline in this process. A RemoteEnvironment submits it to a Ray cluster.
SAGE 的 LocalEnvironment 在本地运行。RemoteEnvironment 使用 Ray 集群！"""


def test_units_keep_their_lines_and_kinds():
    units = split_units(DOC, start_line=40)
    by_text = {u.text: u for u in units}
    assert by_text["pip install intsage-kernel"].kind == "code" and by_text["pip install intsage-kernel"].start_line == 43
    lead = next(u for u in units if u.text.startswith("Install the core packages"))
    assert lead.lead_in and lead.start_line == 41  # "... with:" brings the command along
    row = next(u for u in units if u.text.startswith("`port`"))
    assert row.start_line == 47 and row.context == "option | default | meaning"  # the header gives a row its meaning
    assert not any(u.text.startswith("## ") for u in units)  # headings are context, not evidence
    zh = [u.text for u in units if u.start_line == 51]
    assert zh == ["SAGE 的 LocalEnvironment 在本地运行。", "RemoteEnvironment 使用 Ray 集群！"]  # no space needed


def test_code_outside_a_fence_is_code():
    units = split_units("from sage.core.api import LocalEnvironment\nenv = LocalEnvironment('x')\n", 1)
    assert {u.kind for u in units} == {"code"}


@dataclass(frozen=True)
class Doc:
    text: str
    path: str = "guide.md"
    heading: str = "Install"
    start_line: int = 40


@pytest.mark.parametrize(
    "question, expected",
    [
        ("Which port does the gateway listen on by default?", "8080"),  # a table row, shown under its header
        ("How do I install the core packages?", "pip install intsage-kernel"),  # the lead-in brings the command
        ("What is the difference between LocalEnvironment and RemoteEnvironment?", "Ray cluster"),
        ("LocalEnvironment 和 RemoteEnvironment 有什么区别？", "Ray 集群"),
    ],
)
def test_the_selector_finds_the_unit_that_answers(question, expected):
    picked = EvidenceSelector(max_chars=300).select(question, [Doc(DOC)])
    assert picked and expected in picked[0].text or expected in " ".join(p.text for p in picked[:2])


def test_a_table_row_is_shown_with_its_header_and_pieces_cite_exact_lines():
    (first, *_) = EvidenceSelector(max_chars=300).select("What is the default port?", [Doc(DOC)])
    assert first.text.startswith("option | default | meaning\n`port` | 8080")
    # the piece is a passage from the table on (what follows the match comes along); its
    # citation names exactly the lines shown, not the chunk's
    assert first.start_line == 45 and first.end_line == max(u.end_line for u in first.units)
    assert "pip install" not in first.text


def test_the_budget_holds_and_nothing_is_said_twice():
    long_doc = Doc("\n".join(f"The gateway port is 8080 and it listens on all interfaces, note {i}." for i in range(30)))
    picked = EvidenceSelector(max_chars=300).select("what port does the gateway use?", [long_doc])
    assert sum(len(p.text) for p in picked) <= 300 * 1.2
    texts = [p.text for p in picked]
    assert len(texts) == len(set(texts))


def test_a_sentence_copied_into_several_files_is_shown_once():
    said = "A ParallelGroup runs independent branches concurrently on the same input and joins them."
    docs = [Doc(said + " Without a join it outputs a Branches record."), Doc(said), Doc("  " + said.upper())]
    picked = EvidenceSelector(max_chars=600).select("What is a ParallelGroup?", docs)
    shown = " ".join(p.text for p in picked).lower()
    assert shown.count("runs independent branches") == 1


SECTIONS = """## Deployment

### Install

```bash
pip install gateway-server
```

### Health check

```bash
curl http://localhost:9000/ping
```"""


def test_a_unit_knows_the_heading_above_it_inside_its_chunk():
    units = split_units(SECTIONS, 10)
    curl = next(u for u in units if "curl" in u.text)
    assert curl.section == "Health check" and curl.start_line == 21
    assert next(u for u in units if "pip install" in u.text).section == "Install"


def test_the_heading_inside_a_chunk_leads_to_the_lines_under_it():
    """The chunk's own heading names its first section only ("Deployment > Install")."""
    doc = Doc(SECTIONS, heading="Deployment > Install")
    picked = EvidenceSelector().select("How do I run the health check?", [doc])
    assert "curl http://localhost:9000/ping" in picked[0].text


def test_badges_and_images_are_not_evidence_and_links_stay():
    text = ("# HanLP\n[![stars](https://img.shields.io/github/stars/x)](https://github.com/x) "
            "[![pypi](https://img.shields.io/pypi/v/x)](https://pypi.org/x)\n"
            "HanLP is a toolkit. See the picture ![arch](docs/arch.png) and [the tutorial](https://x.y/t).")
    units = split_units(text)
    assert [u.text for u in units] == ["HanLP is a toolkit.", "See the picture and [the tutorial](https://x.y/t)."]
    assert units[0].start_line == 3


def test_code_abbreviations_meet_the_words_they_shorten():
    """"dimension" finds ``dim = 4``: code shortens the words a question spells out."""
    code = Doc("def main():\n    dim = 4\n\n    total = 5\n    print('vector demo')\n",
               path="hello_db.py", heading="hello_db.py")
    question = "Which vector dimension does the hello_db example use?"
    picked = EvidenceSelector(max_chars=40).select(question, [code])
    assert "dim = 4" in picked[0].text
    assert "dim = 4" not in EvidenceSelector(max_chars=40, abbreviation_weight=0).select(question, [code])[0].text


def test_a_wrapped_sentence_stays_whole():
    """Docs wrapped at ~100 columns end a paragraph (or a list item) with a short line: it is
    the rest of the sentence, not a unit of its own (the paper's title was cut in two)."""
    text = ("精炼组件基于ACL 2025接收的论文《Hierarchical Document Refinement for Long-context Retrieval-augmented\n"
            "Generation》实现：\n\n"
            "- **作者**：Jiajie Jin, Xiaoxi Li, Guanting Dong, Yuyao Zhang, Yutao Zhu, Yongkang Wu, Zhonghua Li, Qi\n"
            "  Ye, Zhicheng Dou\n"
            "- **会议**：ACL 2025\n\n"
            "Short lines stand alone.\nLike this one.\n")
    units = split_units(text, 1)
    assert units[0].text.endswith("Retrieval-augmented Generation》实现：") and (units[0].start_line, units[0].end_line) == (1, 2)
    assert units[1].text.endswith("Qi Ye, Zhicheng Dou") and (units[1].start_line, units[1].end_line) == (4, 5)
    assert [u.text for u in units[2:]] == ["**会议**：ACL 2025", "Short lines stand alone.", "Like this one."]


def test_a_question_for_a_paper_is_answered_by_its_title():
    """Asked which paper a method comes from, the sentence that names the paper's title
    answers; the one that says the method's name back does not."""
    doc = Doc("LongRefiner 通过分层文档结构化解决长上下文的问题。\n\n"
              "该组件基于 ACL 2025 接收的论文《Hierarchical Document Refinement for Long-context RAG》实现。\n",
              heading="LongRefiner")
    question = "LongRefiner 这个精炼方法出自哪篇论文？"
    assert "《Hierarchical" in EvidenceSelector(max_chars=90).select(question, [doc])[0].text
    assert "《Hierarchical" not in EvidenceSelector(max_chars=90, answer_name_boost=1.0).select(question, [doc])[0].text


def test_two_words_code_writes_as_one_meet_it():
    """"times out" finds ``TimeoutError``; "FAISS index" finds ``FaissIndex``."""
    from studio_nb.services.evidence.selector import _compounds

    vocabulary = frozenset({"timeout", "timeouterror", "error", "faissindex", "setup"})
    assert _compounds("What if a call times out while the FAISS index is set up?", vocabulary) == {
        "timeout", "faissindex", "setup"}
    assert _compounds("time out", frozenset({"other"})) == set()  # only words the units have


def test_a_question_about_errors_prefers_the_unit_that_names_one():
    """Asked which exceptions, the (Chinese) line that names them beats an English line that
    only shares the question's words."""
    doc = Doc("A listener thread reads the responses of each service call.\n\n"
              "超时时抛出 `TimeoutError`，失败时抛出 `RuntimeError`。\n", heading="Service calls")
    question = "Which exceptions can a blocking service call raise?"
    assert "RuntimeError" in EvidenceSelector(max_chars=70).select(question, [doc])[0].text
    assert "RuntimeError" not in EvidenceSelector(max_chars=70, answer_name_boost=1.0).select(question, [doc])[0].text


def test_a_question_for_a_constant_prefers_its_definition():
    code = Doc('def main():\n    print(f"connect to http://localhost:{PORT}/v1 for embedding")\n\n'
               "# Use SagePorts for embedding port configuration\nEMBEDDING_PORT = SagePorts.EMBEDDING_SECONDARY  # 8091\n",
               path="embedding_server_example.py", heading="module")
    question = "Which port constant does the embedding server example connect to?"
    assert "EMBEDDING_PORT =" in EvidenceSelector(max_chars=120).select(question, [code])[0].text
    assert "EMBEDDING_PORT =" not in EvidenceSelector(max_chars=120, answer_name_boost=1.0).select(question, [code])[0].text


def test_code_from_one_block_keeps_its_indentation_when_shown_together():
    """Units are dedented to save characters, but two units of one function shown in one
    passage keep their depths: ``return`` stays inside the ``if``."""
    code = Doc("def main():\n    if TEST_MODE:\n        print('test mode: port 8091')\n\n"
               "        print('model bge-m3')\n        return\n", path="server.py", heading="def main")
    text = EvidenceSelector(max_chars=400).select("Which port and model in test mode?", [code])[0].text
    assert text == ("def main():\n    if TEST_MODE:\n        print('test mode: port 8091')\n"
                    "        print('model bge-m3')\n        return")


def test_a_gap_before_indented_code_is_marked_on_its_own_line():
    from studio_nb.services.evidence.selector import Selection
    from studio_nb.services.evidence.units import Unit

    units = (Unit("def main():", 1, 1, "code"), Unit("return port", 9, 9, "code", indent=4))
    assert Selection(0, units, 1.0, (0, 3)).text == "def main():\n…\n    return port"


def test_a_wrapped_list_item_that_leads_in_leads_its_own_sub_items():
    units = split_units("- The gateway takes these options, all of them optional and read once at\n"
                        "  start-up:\n"
                        "  - `port`: where it listens\n")
    assert units[0].lead_in and units[0].end_line == 2
    assert units[1].context == units[0].text  # the sub-item knows what it is an option of


def test_code_cut_after_a_call_does_not_start_with_its_closing_brackets():
    """A chunk cut inside a call leaves ``)`` at the top of the next one: it says nothing, and
    the unit (and its citation) starts at the first line that does."""
    units = split_units(")\n    },\n)\ncollection.batch_insert_data(texts)\n", start_line=40, code=True)
    assert [(u.text, u.start_line) for u in units] == [("collection.batch_insert_data(texts)", 43)]
