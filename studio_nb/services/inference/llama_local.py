"""``LlamaCppClient``: a GGUF model in this process through llama-cpp-python.

llama.cpp is blocking and its context is not thread-safe, so:

- one model is loaded per client (lazily, in ``warm_up``) and every generation runs on
  the client's one worker thread (a single-worker executor): a second request waits in
  its queue, and one stopped while it waits is skipped when its turn comes;
- ``astream_chat``, the client's one streaming loop, hands deltas from that thread to the
  event loop through a queue (no polling); the blocking ``stream_chat`` and ``chat`` are the
  base class's, built on it; ``submit`` hands them to a callback on the worker thread itself
  (the model process writes them to its socket from there);
- a per-request stop flag is checked between tokens (inside ``generate``, see
  ``_traced_llama_class``), so closing the stream or cancelling its task stops the model
  within one token and frees the worker for the next request.

Running the token loop on one long-lived worker thread also matters for speed: on an
oversubscribed machine llama.cpp's OpenMP team is several times slower on the main
thread (bench/inference_overhead.py, ``direct`` vs ``direct_thread``).

The prompt is built by the GGUF's own chat template, and the KV cache keeps the longest
common prefix with the previous request (llama-cpp-python does this in ``generate``), so
a stable system prompt and history at the front of the prompt make follow-up turns start
fast. ``last_generation`` records how many prompt tokens really had to be evaluated.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import AsyncIterator, Iterator

from studio_nb.errors import BudgetExceededError, ConfigError, ModelNotFoundError
from studio_nb.services.inference.base import (
    InferenceClient,
    InvalidRequestError,
    Messages,
    TokenDelta,
    Usage,
    validate_request,
)
from studio_nb.services.models import CHAT_MODEL_FILE, check_readable, default_chat_model_path

#: what to do about a chat model that cannot be read or loaded
MODEL_FIX = "pass model_path= an existing, complete .gguf file (or leave it unset for the bundled SmolLM2)"


@dataclass(frozen=True)
class GenerationStats:
    """What one generation cost; ``prompt_tokens_evaluated`` < ``prompt_tokens`` means a KV-cache hit."""

    prompt_tokens: int
    prompt_tokens_evaluated: int
    completion_tokens: int
    wait_s: float  # waiting for the model's worker (another request was generating)
    ttft_s: float | None  # generation started -> first text delta
    duration_s: float  # generation started -> generation ended
    stopped_early: bool  # the consumer closed/cancelled the stream
    tokens_after_stop: int  # tokens sampled after the stop was requested (0 or 1)


@dataclass
class _Trace:
    """Per-request state shared by the consumer, the worker thread and the model hooks."""

    stop: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=perf_counter)
    started: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int | None = None
    prompt_evaluated: int | None = None
    generated: list[int] = field(default_factory=list)
    tokens_at_stop: int | None = None

    def request_stop(self) -> None:
        if not self.stop.is_set():
            self.tokens_at_stop = len(self.generated)
            self.stop.set()


@functools.cache
def _traced_llama_class():
    """``llama_cpp.Llama`` with two hooks: count prompt tokens evaluated, stop between tokens.

    The chat handlers of llama-cpp-python replace any ``stopping_criteria`` the caller
    passes with the template's own, so the stop check lives in ``generate`` instead.
    Built on first use so importing this module does not import llama_cpp.
    """
    from studio_nb.services.inference.backends import load_cpu_backends

    load_cpu_backends()  # a runtime-dispatched build ships its CPU code as plug-ins (no-op otherwise)
    import llama_cpp
    from llama_cpp import Llama

    class TracedLlama(Llama):
        trace: _Trace | None = None

        def eval(self, tokens):
            tr = self.trace
            if tr is not None and tr.prompt_evaluated is None:
                tr.prompt_evaluated = len(tokens)  # the prompt suffix not found in the KV cache
                if len(tokens) > 1:
                    # Decode the last prompt token on its own: a cache hit replays exactly
                    # that one token, and CPU kernels give slightly different numbers for a
                    # token decoded alone than inside a batch, enough to flip a greedy pick.
                    super().eval(tokens[:-1])
                    return super().eval(tokens[-1:])
            return super().eval(tokens)

        def forget_generated(self) -> None:
            """Keep only the prompt in the KV cache.

            Generated tokens were decoded one at a time; a later prompt that contains
            them (the next turn's history) decodes them in a batch when the cache is
            cold. Dropping them makes an answer independent of what ran before.
            """
            tr = self.trace
            keep = tr.prompt_tokens if tr is not None else None
            if keep is not None and self.n_tokens > keep:
                self._ctx.kv_cache_seq_rm(-1, keep, -1)
                self.n_tokens = keep
                self._requires_eval = True

        def generate(self, tokens, *args, **kwargs):
            tr = self.trace
            if tr is not None:
                tr.prompt_tokens = len(tokens)
            for token in super().generate(tokens, *args, **kwargs):
                if tr is not None:
                    if tr.stop.is_set():
                        return
                    tr.generated.append(int(token))
                yield token

        def is_eog(self, token: int) -> bool:
            return bool(llama_cpp.llama_vocab_is_eog(self._model.vocab, token))

        def grammar_parses(self, grammar: str) -> bool:
            # llama-cpp-python parses GBNF only when sampling starts, and a bad grammar
            # there leaves a NULL sampler in the chain; parse it up front instead.
            sampler = llama_cpp.llama_sampler_init_grammar(self._model.vocab, grammar.encode(), b"root")
            if not sampler:
                return False
            llama_cpp.llama_sampler_free(sampler)
            return True

    return TracedLlama


def default_threads() -> int:
    """Half the logical CPUs (at least one), as llama-cpp-python itself defaults to.

    Why not all of them: llama.cpp's threads meet at a barrier after every layer, so one
    thread that loses its core to anything else (the Jupyter server, the embedder, another
    user's model process, a browser) stalls all the others. On a 2-core machine
    ``bench/llama_threads.py`` measured 2 threads at 89 tok/s on an idle machine but 24 with
    one busy process beside it, and whole answers went from 0.4 s to 28-96 s under the test
    suite's load; 1 thread gave 52 and 51. Set ``llm: {n_threads: N}`` to trade that
    robustness for speed on a machine you keep idle.
    """
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class LlamaSettings:
    """How a GGUF is loaded, checked once: for this in-process client and for the model
    process that ``ManagedModelClient`` starts with the same settings."""

    model_path: str | None
    n_ctx: int
    n_threads: int
    seed: int
    n_batch: int
    chat_format: str | None

    @classmethod
    def checked(cls, model_path: str | os.PathLike | None = None, n_ctx: int = 2048, n_threads: int | None = None,
                seed: int = 0, n_batch: int = 256, chat_format: str | None = None) -> "LlamaSettings":
        """The settings with defaults filled in; a bad value is a ConfigError that names it."""
        for name, value in (("n_ctx", n_ctx), ("n_batch", n_batch), ("n_threads", n_threads or 1)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        return cls(str(model_path) if model_path else None, n_ctx, n_threads or default_threads(), seed, n_batch,
                   chat_format)

    @property
    def model_name(self) -> str:
        return Path(self.model_path or CHAT_MODEL_FILE).stem

    def model_file(self) -> Path:
        """The GGUF to load: ``model_path`` if readable (else ModelNotFoundError with the fix),
        or the bundled model."""
        if self.model_path:
            return check_readable(Path(self.model_path), "chat model (GGUF)", MODEL_FIX)
        return default_chat_model_path()


class LlamaCppClient(InferenceClient):
    """A local GGUF chat model; one loaded model shared safely by concurrent requests."""

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        n_batch: int = 256,
        chat_format: str | None = None,
    ) -> None:
        self.settings = settings = LlamaSettings.checked(model_path, n_ctx, n_threads, seed, n_batch, chat_format)
        self.model_path, self.n_ctx, self.n_threads = settings.model_path, settings.n_ctx, settings.n_threads
        self.seed, self.n_batch, self.chat_format = settings.seed, settings.n_batch, settings.chat_format
        self.load_time_s: float | None = None
        self.last_generation: GenerationStats | None = None
        self._llama = None
        self._formatter = None
        self._load_lock = threading.Lock()
        self._worker: ThreadPoolExecutor | None = None  # one generation at a time: contexts are not thread-safe
        self._generating = 0

    @property
    def model_name(self) -> str:
        return Path(self.model_path or CHAT_MODEL_FILE).stem

    @property
    def busy(self) -> bool:
        """True while a generation holds the model."""
        return self._generating > 0

    def _submit(self, fn) -> None:
        with self._load_lock:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-llama")
            self._worker.submit(fn)

    def __repr__(self) -> str:
        state = "loaded" if self._llama is not None else "not loaded"
        return f"LlamaCppClient({self.model_name!r}, n_ctx={self.n_ctx}, n_threads={self.n_threads}, {state})"

    # -- lifecycle -------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the GGUF (idempotent); ModelNotFoundError names the path and the fix."""
        if self._llama is not None:
            return
        with self._load_lock:
            if self._llama is not None:
                return
            path = self.settings.model_file()
            start = perf_counter()
            try:
                llama = _traced_llama_class()(
                    model_path=str(path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_batch=self.n_batch,
                    seed=self.seed,
                    chat_format=self.chat_format,
                    verbose=False,
                )
            except ValueError as exc:  # llama-cpp-python: "Failed to load model from file"
                raise ModelNotFoundError(f"chat model at {path} could not be loaded ({exc}); fix: {MODEL_FIX}") from exc
            self._formatter = self._chat_formatter(llama, path)
            self.load_time_s = perf_counter() - start
            self._llama = llama

    def _chat_formatter(self, llama, path: Path):
        """The formatter used both to build prompts and to count chat tokens."""
        from llama_cpp import llama_chat_format

        if self.chat_format is None:
            template = llama.metadata.get("tokenizer.chat_template")
            if not template:
                raise ConfigError(f"{path} has no chat template; fix: pass chat_format='chatml' (or another name)")

            def piece(token: int) -> str:
                return "" if token < 0 else llama.detokenize([token], special=True).decode("utf-8", "ignore")

            formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=piece(llama.token_eos()),
                bos_token=piece(llama.token_bos()),
                stop_token_ids=[llama.token_eos()],
            )
            llama.chat_handler = formatter.to_chat_handler()  # not a guessed built-in look-alike
            return formatter
        formatter = getattr(llama_chat_format, "format_" + self.chat_format.replace("-", "_").replace(".", "_"), None)
        if formatter is None:
            raise ConfigError(
                f"chat_format {self.chat_format!r} has no prompt formatter in llama_cpp.llama_chat_format; "
                "fix: leave chat_format unset to use the GGUF's own template"
            )
        return formatter

    def close(self) -> None:
        """Free the model after any running generation ends; ``warm_up`` loads it again."""
        with self._load_lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=True)
        with self._load_lock:
            llama, self._llama, self._formatter = self._llama, None, None
            if llama is not None:
                llama.close()

    # -- tokens ----------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        # Tokenizing reads only the vocabulary, so it does not wait for a running generation.
        self.warm_up()
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_chat_tokens(self, messages: Messages) -> int:
        messages = validate_request(messages, 1, 0.0)
        self.warm_up()
        result = self._formatter(messages=messages)
        prompt = self._llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
        return len(prompt)  # the same call the chat handler makes

    # -- generation ------------------------------------------------------------------

    async def astream_chat(self, messages: Messages, **options) -> AsyncIterator[TokenDelta]:
        """The client's one streaming loop; options as in ``InferenceClient.astream_chat``.
        Needs an asyncio event loop (anyio on its asyncio backend is fine): deltas arrive
        from the worker thread via ``call_soon_threadsafe``. Closed mid-stream, it returns
        once the worker stopped (within a token), so the model is free again."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue()
        trace = _Trace()

        def hand_over(item) -> None:
            try:
                loop.call_soon_threadsafe(items.put_nowait, item)
            except RuntimeError:  # the event loop is gone: nobody is listening
                trace.request_stop()

        self._submit(lambda: self._produce(messages, options, trace, hand_over))
        finished = False
        try:
            while (item := await items.get()) is not _DONE:
                if isinstance(item, _Failure):  # raise once the worker let go of the model
                    while await items.get() is not _DONE:
                        pass
                    finished = True
                    raise item.exc
                yield item
            finished = True
        finally:
            trace.request_stop()
            if not finished and trace.started.is_set():  # closed mid-stream: wait the one token out
                while await items.get() is not _DONE:
                    pass

    def submit(self, messages: Messages, hand_over, **options):
        """Queue one request for the worker thread and return its stop function at once.

        ``hand_over`` is called *on the worker thread* with each TokenDelta, then with the
        exception if the request failed, then with None when it is over (also after a stop).
        For a consumer that forwards deltas without another thread hop: the model process
        writes each one to its socket from here (model_server.py). Options as ``astream_chat``.
        """
        trace = _Trace()

        def forward(item) -> None:
            hand_over(None if item is _DONE else item.exc if isinstance(item, _Failure) else item)

        self._submit(lambda: self._produce(messages, options, trace, forward))
        return trace.request_stop

    def _produce(self, messages: Messages, options: dict, trace: "_Trace", hand_over) -> None:
        """Runs on the worker thread: the whole token loop of one request."""
        queued = trace.queued_at
        if trace.stop.is_set():  # stopped while it waited for the worker: skip it
            hand_over(_DONE)
            return
        trace.started.set()
        self._generating += 1
        deltas = self._deltas(messages, trace=trace, waited=perf_counter() - queued, **options)
        try:
            for delta in deltas:
                if trace.stop.is_set():
                    break
                hand_over(delta)
        except BaseException as exc:  # handed to the consumer, raised there
            hand_over(_Failure(exc))
        finally:
            deltas.close()
            self._generating -= 1
            hand_over(_DONE)

    def _deltas(
        self,
        messages: Messages,
        *,
        trace: _Trace,
        waited: float = 0.0,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: list[str] | str | None = None,
        grammar: str | None = None,
    ) -> Iterator[TokenDelta]:
        """The blocking token loop (on the worker thread)."""
        messages = validate_request(messages, max_tokens, temperature)
        self.warm_up()
        llama = self._llama
        compiled = self._compile_grammar(grammar)
        # Checked here, not left to llama-cpp-python: llama.cpp pads the context to a
        # multiple of 256 and llama-cpp-python then checks against the padded size while
        # its token buffer has the requested one, so an overlong prompt would crash there.
        n_prompt = self.count_chat_tokens(messages)
        if n_prompt >= self.n_ctx:
            raise BudgetExceededError(
                f"the prompt takes {n_prompt} tokens but {self.model_name} has n_ctx={self.n_ctx}; "
                "fix: shorten the prompt/history or raise n_ctx"
            )
        max_tokens = min(max_tokens, self.n_ctx - n_prompt)
        start = perf_counter()
        ttft = stats = finish = None
        try:
            llama.trace = trace
            try:
                stream = llama.create_chat_completion(
                    messages=messages,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=self.seed if seed is None else seed,
                    stop=stop,
                    grammar=compiled,
                    stream=True,
                )
                try:
                    for chunk in stream:
                        if trace.stop.is_set():
                            break
                        choice = chunk["choices"][0]
                        finish = choice.get("finish_reason") or finish
                        text = choice["delta"].get("content") or ""
                        if text:
                            if ttft is None:
                                ttft = perf_counter() - start
                            yield TokenDelta(text)
                finally:
                    stream.close()
            except ValueError as exc:
                translated = self._translate(exc)
                if translated is exc:
                    raise
                raise translated from exc
            stats = self._record(trace, waited, start, ttft)
            if not trace.stop.is_set():
                usage = Usage(stats.prompt_tokens, stats.completion_tokens)
                yield TokenDelta("", finish_reason=finish or "stop", usage=usage)
        finally:
            llama.forget_generated()
            llama.trace = None
            if stats is None:  # closed mid-stream or failed: still say what it cost
                self._record(trace, waited, start, ttft)

    def _record(self, trace: _Trace, wait_s: float, start: float, ttft: float | None) -> GenerationStats:
        llama = self._llama
        generated = trace.generated
        stopped = trace.tokens_at_stop is not None
        stats = GenerationStats(
            prompt_tokens=trace.prompt_tokens or 0,
            prompt_tokens_evaluated=trace.prompt_evaluated or 0,
            completion_tokens=sum(1 for t in generated if not llama.is_eog(t)),
            wait_s=wait_s,
            ttft_s=ttft,
            duration_s=perf_counter() - start,
            stopped_early=stopped,
            tokens_after_stop=len(generated) - trace.tokens_at_stop if stopped else 0,
        )
        self.last_generation = stats
        return stats

    def _compile_grammar(self, grammar: str | None):
        if grammar is None:
            return None
        from llama_cpp import LlamaGrammar

        if not isinstance(grammar, str) or not self._llama.grammar_parses(grammar):
            raise InvalidRequestError(
                f"grammar is not valid GBNF with a 'root' rule: {grammar!r:.200}; "
                'fix: e.g. root ::= "A" | "B" (see llama.cpp grammars/README.md)'
            )
        return LlamaGrammar.from_string(grammar, verbose=False)

    def _translate(self, exc: ValueError) -> Exception:
        if "exceed context window" in str(exc):
            return BudgetExceededError(
                f"{exc} of {self.model_name}; fix: shorten the prompt/history or raise n_ctx (now {self.n_ctx})"
            )
        return exc


@dataclass(frozen=True)
class _Failure:
    exc: BaseException


_DONE = object()  # the end of one request's deltas
