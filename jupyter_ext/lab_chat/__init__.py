"""Studio as a member of JupyterLab's own chat (``jupyterlab-chat`` ``.chat`` files).

One concept per module:

* ``member``      the chat member: one ``.chat`` file is one session per user; commands, turns, stop
* ``render``      the one renderer of a turn in a chat message (``studio_nb.present.markdown`` + citations)
* ``attachments`` cells and files attached to a message, read as evidence (``nb.ipynb:C3``)
* ``native``      answering through jupyterlab-chat's chat manager (no jupyter-ai needed)
* ``persona``     the same member as a jupyter-ai persona (``jupyter_ai.personas`` entry point)
* ``authored``    the chat WebSocket that stamps each message with the user Jupyter authenticated
* ``wiring``      which of the above a server uses (``StudioExtension.chat_member``)

Nothing here is imported unless jupyterlab-chat is installed and the member is switched on.
"""
