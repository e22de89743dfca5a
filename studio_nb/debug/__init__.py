"""See a turn and change it (DESIGN §7, Phase 3): its trace, replays, diffs, breakpoints,
snapshots and per-session variants, on top of the kernel's trace and replay.

    t1 = pipe.ask("what is a ParallelGroup?")
    t1.trace                                   # a timeline in a notebook; records in code
    t2 = pipe.replay(t1, from_="prompt_builder", params={"prompt_builder": {"max_doc_chars": 200}})
    studio_nb.diff(t1, t2)                     # evidence, prompt, answer, timings
    pipe.breakpoint("token_budget"); t3 = pipe.ask(...); t3.paused_at; t3.pending; t3.resume()

Modules: ``trace`` (``turn.trace``), ``view`` (what a person sees of a record), ``diff``,
``snapshot`` (a paused turn as JSON), ``variants`` (per-session settings and operators),
``log`` (the pipeline's recent turns, bounded).
"""
