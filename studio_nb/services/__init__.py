"""Services do the real work (models, indexes, storage, tools); they know nothing about
pipelines. Operators in ``studio_nb.operators`` adapt them to the kernel."""
