"""Sentence embeddings with onnxruntime and the ``tokenizers`` package: no torch at all.

Serves the export ``onnx_export.py`` made of a sentence-transformers folder: the Rust
tokenizer from its ``tokenizer.json`` (truncated at the model's ``max_seq_length``, as
sentence-transformers does), the transformer graph in onnxruntime, then the pooling its
``1_Pooling/config.json`` names (mean or CLS) and the L2 normalisation — what
``SentenceTransformer.encode(..., normalize_embeddings=True)`` returns, to float error
(fp32) or quantisation error (int8).

Texts are embedded in batches of similar token length (sorted by the tokenizer's own
count, then padded to the longest in the batch): short chunks do not pay for long ones.
Loading takes well under a second; onnxruntime is imported here only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from studio_nb.errors import ConfigError


class OnnxEncoder:
    """L2-normalised float32 embeddings from an exported folder; one encode at a time
    (the caller serialises: ``Embedder`` holds a lock)."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        cfg = _read_json(folder / "sentence_bert_config.json", {"max_seq_length": 256})
        pooling = _read_json(folder / "pooling.json", {"pooling_mode_mean_tokens": True})
        if pooling.get("pooling_mode_cls_token"):
            self.pooling = "cls"
        elif pooling.get("pooling_mode_mean_tokens"):
            self.pooling = "mean"
        else:
            raise ConfigError(f"{folder}: only mean or CLS pooling is served by the ONNX runtime; "
                              "fix: set embedding_runtime: torch for this model")
        self.normalize = "sentence_transformers.models.Normalize" in (folder / "modules.json").read_text() \
            if (folder / "modules.json").is_file() else True
        self.max_length = int(cfg.get("max_seq_length") or 256)
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(self.max_length)
        self.tokenizer = tok
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # no busy-waiting between operators: on 2 shared cores a spinning thread takes the CPU
        # from the ingest's term cutting, the chat model and everyone else
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.dim = int(_read_json(folder / "config.json", {}).get("hidden_size") or self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """``(len(texts), dim)`` float32, in the order of ``texts``."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        encs = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encs)), key=lambda i: -len(encs[i].ids))
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            out[idx] = self._run([encs[i] for i in idx])
        return out

    def _run(self, encs) -> np.ndarray:
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        types = np.zeros((len(encs), width), dtype=np.int64)
        for row, e in enumerate(encs):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        if self.pooling == "cls":
            vecs = hidden[:, 0]
        else:
            m = mask[:, :, None].astype(np.float32)
            vecs = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        if self.normalize:
            vecs = vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
        return vecs.astype(np.float32)


def _read_json(path: Path, default: dict) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else default
