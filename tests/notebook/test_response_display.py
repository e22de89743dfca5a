"""In IPython a Response (``pipe.chat(...)``) displays as its Markdown rendering, although
the message module does not import its renderer: the package registers it by name."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
import studio_nb
from studio_nb.citation import Citation
from studio_nb.messages import Evidence, EvidencePiece, Response
piece = EvidencePiece(1, "A ParallelGroup runs its branches concurrently.", Citation("kernel.md", 3, 4, domain="docs"))
response = Response("GENERAL_CHAT", "s", "r1", evidence=Evidence((piece,)), synthesis="It runs them at once.",
                    question="what is it?")
print(shell.display_formatter.format(response)[0]["text/markdown"])
"""


def test_a_response_displays_as_markdown_in_ipython():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "**[1]** A ParallelGroup runs its branches concurrently." in out.stdout
    assert "`docs/kernel.md:L3-L4`" in out.stdout and "It runs them at once." in out.stdout
