"""Evidence as passages: what retrieval found reaches the reader with its context, within budget."""

from __future__ import annotations

from dataclasses import dataclass

from studio_nb.services.evidence import EvidenceSelector
from tests.evidence.test_units_and_selector import Doc as _Doc


@dataclass(frozen=True)
class Doc(_Doc):
    """A chunk with no heading, from line 1."""

    heading: str = ""
    start_line: int = 1


AUTOSTOP = Doc("""## autostop
Submit the job with `env.submit(autostop=True)` to stop it once the sources are exhausted.
The environment then polls the job status with `_wait_for_completion()`.
It waits at most 5 minutes, then calls `stop()` and releases the resources.
Resources are released by the JobManager in any case.""")

SOURCE = Doc("""```python
from sage.core.api.function.source_function import SourceFunction
from sage.core.api.local_environment import LocalEnvironment
```

A source ends its data by returning a StopSignal from execute():

```python
def execute(self):
    if self.done:
        return StopSignal("FileReader_EOF")
```""", path="hello_local_batch.md")

LIST = Doc("""The gateway accepts three options:
- `port`: where it listens, 8080 by default
- `workers`: processes that serve requests
- `timeout`: seconds before a request fails""")


def _shown(picked) -> str:
    return "\n".join(p.text for p in picked)


def test_the_sentence_after_the_match_comes_along():
    """The answer ("at most 5 minutes") shares few words with the question; it follows the match."""
    picked = EvidenceSelector().select("How long does autostop=True wait before stopping the job?", [AUTOSTOP])
    assert "5 minutes" in picked[0].text and "stop()" in picked[0].text


def test_a_code_block_comes_with_the_sentence_that_introduces_it_and_imports_come_last():
    picked = EvidenceSelector().select("How does a SourceFunction signal the end of its data?", [SOURCE])
    first = picked[0].text
    assert "returning a StopSignal" in first and 'StopSignal("FileReader_EOF")' in first
    assert not first.startswith("from sage")  # three import lines explain nothing


def test_a_list_item_keeps_its_lead_in():
    picked = EvidenceSelector().select("Which option sets the request timeout of the gateway?", [LIST])
    assert "three options" in picked[0].text and "seconds before a request fails" in picked[0].text


def test_the_budget_goes_to_the_answer_first_and_holds_in_total():
    filler = Doc("\n".join(f"Unrelated note {i} about logging and colours of the console output." for i in range(20)))
    selector = EvidenceSelector(max_chars=300)
    picked = selector.select("How long does autostop=True wait before stopping the job?", [filler, AUTOSTOP])
    assert "5 minutes" in picked[0].text and picked[0].doc == 1
    assert sum(len(p.text) + 5 for p in picked) <= 300
    assert all("Unrelated note" not in p.text for p in picked)  # shares nothing with the question


def test_units_left_out_between_two_taken_ones_are_marked():
    doc = Doc("\n\n".join([
        "The gateway listens on port 8080 by default.",
        "Its logo is blue and was drawn in 2019 by the design team for the launch.",
        "Colours of the console are configurable in the theme file of the terminal.",
        "To change the port of the gateway, set `port` in gateway.yaml.",
    ]))
    (first,) = EvidenceSelector(follow=0.0).select("Which port does the gateway listen on, and how do I change the port?", [doc])
    assert first.text.startswith("The gateway listens on port 8080")
    assert "… To change the port" in first.text and "logo" not in first.text
    assert (first.start_line, first.end_line) == (1, 7)


def test_import_lines_are_evidence_only_when_the_question_asks_where_from():
    question = "How does a SourceFunction signal the end of its data?"
    assert "import" not in "".join(p.text for p in EvidenceSelector().select(question, [SOURCE]))
    picked = EvidenceSelector().select("Which module do I import SourceFunction from?", [SOURCE])
    assert "from sage.core.api.function.source_function import SourceFunction" in picked[0].text


def test_a_code_run_is_cut_where_the_next_example_starts():
    from studio_nb.services.evidence import split_units

    code = "env.submit(autostop=True)\nenv.close()\nfrom sage.kv import KVService\nclass Store:\n    pass"
    units = split_units(f"```python\n{code}\n```")
    assert [u.text.split("\n")[0] for u in units] == ["env.submit(autostop=True)", "from sage.kv import KVService"]
    assert (units[1].start_line, units[1].end_line) == (4, 6)


def test_import_lines_joined_into_a_sentence_and_a_lone_table_header_are_not_evidence():
    doc = Doc("""Start with:

from sage.env import LocalEnvironment from sage.env import RemoteEnvironment

| feature | LocalEnvironment | RemoteEnvironment |
|---|---|---|
| deployment | one machine | a Ray cluster |""")
    picked = EvidenceSelector().select("How do LocalEnvironment and RemoteEnvironment differ in deployment?", [doc])
    text = "\n".join(p.text for p in picked)
    assert "import" not in text
    assert text.count("feature | LocalEnvironment | RemoteEnvironment") == 1  # once, above its row
    assert "deployment | one machine | a Ray cluster" in text


def test_a_parenthesised_import_is_an_import_and_code_that_uses_it_is_not():
    from studio_nb.services.evidence.selector import _imports_only
    from studio_nb.services.evidence.units import Unit

    assert _imports_only(Unit("import numpy as np\nfrom sage.vdb import (\n    FaissIndex,\n)", 1, 4, "code"))
    assert not _imports_only(Unit("from sage.vdb import (FaissIndex,\n    Flat)\nindex = FaissIndex()", 1, 3, "code"))
    guarded = "# fall back to the source tree\ntry:\n    from sage.core import BatchFunction\nexcept ImportError:\n    pass"
    assert _imports_only(Unit(guarded, 1, 5, "code"))
    assert not _imports_only(Unit("try:\n    run()\nexcept ValueError:\n    pass", 1, 4, "code"))


def test_a_question_of_how_long_is_answered_by_prose_before_code():
    code = Doc("```python\nenv = LocalEnvironment('batch-job')\nenv.submit(autostop=True)\n```", path="a.md")
    prose = Doc("With autostop=True the environment waits for the job at most 5 minutes, then calls stop().", path="b.md")
    picked = EvidenceSelector().select("How long does a LocalEnvironment job with autostop=True wait?", [code, prose])
    assert "5 minutes" in picked[0].text


def test_the_unit_after_a_taken_one_comes_along_only_if_it_could_be_evidence_itself():
    doc = Doc("To read the ledger, call `read()` on a client.\n\n```python\nfrom okapi.ledger import read\n```\n\n"
              "The ledger keeps 14 days of entries.")
    text = "\n".join(p.text for p in EvidenceSelector().select("How do I read the okapi ledger?", [doc]))
    assert "call `read()`" in text and "import" not in text
