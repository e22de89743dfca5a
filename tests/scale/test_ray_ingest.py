"""Ingestion on a local Ray cluster: files split, embedded and cut into terms on Ray
actors (two here), written to the same store as a local ingest — with the same chunks,
terms and vectors — and from the command line with ``--engine ray``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from studio_nb.services.knowledge import KnowledgeManager
from studio_nb.services.knowledge.ray_ingest import RayWork
from tests.knowledge.kb_helpers import copy_subset

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _rows(km: KnowledgeManager, domain: str) -> dict:
    db = km._domains[domain].store._conn()
    return {(src, start, text): (tokens, np.frombuffer(vec, dtype=np.float32))
            for src, start, text, tokens, vec in db.execute("SELECT source, start_line, text, tokens, vector FROM chunks")}


def test_a_ray_ingest_spreads_over_the_workers_and_stores_what_a_local_one_does(
        ray_local, tmp_path, shared_data) -> None:
    from studio_nb.services.embeddings import Embedder

    corpus = copy_subset(shared_data, tmp_path / "corpus")
    # fp32 ONNX: its vectors do not depend on the batch a text is in (int8's activations
    # are quantised per batch), so the two ingests can be compared row by row
    km = KnowledgeManager(tmp_path / "data", embedder=Embedder(runtime="onnx"))
    work = RayWork(workers=2, num_cpus=0.5, files_per_task=1, slice_size=8)
    try:
        remote = km.ingest(corpus, "on_ray", progress=False, work=work)
        local = km.ingest(corpus, "here", progress=False)
        assert remote.chunks_added == local.chunks_added > 20 and remote.errors == local.errors
        stats = work.stats()
        assert len(stats) == 2 and os.getpid() not in {s["pid"] for s in stats}
        assert all(s["files"] > 0 and s["embedded"] > 0 for s in stats)  # both workers split and embedded
        assert sum(s["embedded"] for s in stats) == remote.chunks_added
        ray_rows, local_rows = _rows(km, "on_ray"), _rows(km, "here")
        assert ray_rows.keys() == local_rows.keys()
        for key, (tokens, vec) in ray_rows.items():
            assert tokens == local_rows[key][0]
            assert float(vec @ local_rows[key][1]) > 0.9999  # the same model, in the workers' processes
        for q in ("SAGE-DB 示例 hello_sage_db_app 运行", "How do I install SAGE?", "reranker"):
            assert km.search(q, domains=["on_ray"], k=1)[0].chunk.text == km.search(q, domains=["here"], k=1)[0].chunk.text
        # incremental as locally: nothing changed, nothing sent to the workers
        again = km.ingest(corpus, "on_ray", progress=False, work=work)
        assert (again.files_unchanged, again.chunks_added) == (remote.files_seen, 0)
        assert sum(s["embedded"] for s in work.stats()) == remote.chunks_added
    finally:
        work.close()
        km.close()


def test_the_cli_ingests_on_ray(ray_local, tmp_path, shared_data, capsys) -> None:
    from studio_nb import cli

    corpus = copy_subset(shared_data, tmp_path / "corpus")
    data = tmp_path / "data"
    code = cli.main(["--data-dir", str(data), "ingest", str(corpus), "--domain", "papers", "--engine", "ray",
                     "--workers", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["domain"] == "papers" and report["chunks_added"] > 20 and not report["errors"]
    km = KnowledgeManager(data)
    assert [d.chunks for d in km.domains()] == [report["chunks_added"]]
    assert km.search("reranker", domains=["papers"], k=1, mode="lexical")[0].chunk.source == "docs/reranker.md"
    km.close()
