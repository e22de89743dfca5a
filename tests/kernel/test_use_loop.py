"""``kernel.sync.use_loop``: a process that runs its own event loop (the Jupyter server) makes
it studio-nb's one loop, so a Turn runs where it is read and its parts cross no thread.

Run in a child interpreter: which loop is studio-nb's is process-wide state, and this test
process has its own background loop already.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import asyncio, threading
    from studio_nb.kernel import sync
    from studio_nb.messages import TextDelta
    from studio_nb.turn import Turn

    async def main():
        loop = asyncio.get_running_loop()
        assert sync.use_loop(loop) and sync.background_loop() is loop and sync.on_background_loop()
        made_on = []

        async def produce(turn):
            for word in ("one ", "two ", "three"):
                made_on.append(threading.get_ident())
                yield TextDelta(word, turn.request_id)

        turn = Turn("q", session_id="s", request_id="r").start(produce)
        read_on = []
        async for part in turn:
            read_on.append(threading.get_ident())
        assert turn.view.text == "one two three", turn.view.text
        assert set(made_on) == set(read_on) == {threading.get_ident()}, (made_on, read_on)
        try:  # a blocking call on the one loop is refused, not a deadlock
            sync.run_sync(lambda: asyncio.sleep(0))
        except RuntimeError as exc:
            assert "studio-nb loop itself" in str(exc)
        else:
            raise AssertionError("run_sync on the loop itself did not raise")

    asyncio.run(main())
    own = sync.background_loop()  # the adopted loop closed: studio-nb starts its own again
    assert not own.is_closed() and own.is_running()
    assert not sync.use_loop(asyncio.new_event_loop())  # a live loop is never replaced
    print("ok")
""")


def test_a_turn_on_the_adopted_loop_crosses_no_thread() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
