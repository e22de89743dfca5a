"""Intent routing: which of four intents a message is, and which domains to search.

``IntentClassifier(mode="hybrid")`` fuses bilingual keyword rules (0.3) with nearest
labelled prototypes in embedding space (0.7); ``keyword``, ``embedding`` and ``llm``
(grammar-constrained chat model) modes run one stage alone. Importing this package is
cheap: models load in ``warm_up()``.
"""

from studio_nb.services.intent.classifier import IntentClassifier
from studio_nb.services.intent.types import MODES, Intent, IntentResult

__all__ = ["Intent", "IntentResult", "IntentClassifier", "MODES"]
