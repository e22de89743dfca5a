"""Evidence: the passages of the retrieved chunks that answer the question, and the check
that a generated sentence is supported by them (see DESIGN §1, "evidence first")."""

from studio_nb.services.evidence.selector import EvidenceSelector, Selection
from studio_nb.services.evidence.units import Unit, split_units

__all__ = ["EvidenceSelector", "Selection", "Unit", "split_units"]
