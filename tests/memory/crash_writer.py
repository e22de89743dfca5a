"""Child process for the crash tests: save turns in a loop, print "ACK <n> <id>" after
each save_turn returns (the moment the server would acknowledge the user).

Run as: python crash_writer.py DB_PATH SESSION_PREFIX COUNT(0 = forever)
"""

from __future__ import annotations

import hashlib
import sys

from studio_nb.services.memory import MemoryStore, StoredTurn


def payload(prefix: str, n: int) -> tuple[str, str, str]:
    """Deterministic content so the parent can check every field of turn ``n``."""
    session = f"{prefix}-{n % 3}"
    question = f"{prefix} question {n} 问题 " + "x" * (n % 50)
    answer = hashlib.sha256(question.encode()).hexdigest() * (1 + n % 4)
    return session, question, answer


def main() -> None:
    db, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = MemoryStore(db)
    n = 0
    while count == 0 or n < count:
        session, question, answer = payload(prefix, n)
        turn = store.save_turn(StoredTurn.new(session, question, answer, user=prefix, intent="GENERAL_CHAT",
                                        sources=[{"ref": f"doc{n}.md:L1-L2"}], request_id=f"{prefix}-{n}"))
        print(f"ACK {n} {turn.id}", flush=True)
        n += 1
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
