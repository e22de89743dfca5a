"""Settings for the tutorial notebooks nbval runs: their kernels inherit this environment.

A tutorial's kernel ends without closing its pipeline; its model process then exits a
minute after its last answer instead of ten (see studio_nb/services/inference/model_process.py).
"""

import os

os.environ.setdefault("STUDIO_NB_MODEL_IDLE_S", "60")
