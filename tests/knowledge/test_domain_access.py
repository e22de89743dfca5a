"""Who sees which knowledge domain (issue #11, F2): shared domains are read-only to users,
uploads are private to the uploader; the rule lives in the KnowledgeManager only."""

from __future__ import annotations

import pytest

from studio_nb.errors import ConfigError, ForbiddenError
from studio_nb.services.knowledge import KnowledgeManager


@pytest.fixture
def km(tmp_path, real_embedder):
    for name, text in {"shared": "The walrus pipeline batches frames.",
                       "alice": "Alice's secret: the okapi ledger is in vault nine.",
                       "bob": "Bob keeps notes about the narwhal scheduler."}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.md").write_text(f"# {name}\n\n{text}\n", encoding="utf-8")
    manager = KnowledgeManager(tmp_path / "data", embedder=real_embedder)
    manager.ingest(tmp_path / "shared", "handbook", progress=False)                    # admin/CLI: shared
    manager.ingest(tmp_path / "alice", "alice_private", progress=False, user="alice")  # an upload: private
    manager.ingest(tmp_path / "bob", "bob_notes", progress=False, user="bob")
    yield manager
    manager.close()


def names(infos):
    return [d.name for d in infos]


def test_each_user_sees_shared_and_own_domains(km):
    assert names(km.domains(user="bob")) == ["bob_notes", "handbook"]
    assert names(km.domains(user="alice")) == ["alice_private", "handbook"]
    assert names(km.domains()) == ["alice_private", "bob_notes", "handbook"]  # trusted in-process caller
    assert {d.name: d.owner for d in km.domains()} == {"alice_private": "alice", "bob_notes": "bob", "handbook": ""}


def test_search_never_returns_another_users_text(km):
    for domains in (None, ["alice_private"], ["alice_private", "bob_notes"]):
        hits = km.search("okapi ledger vault", domains=domains, k=5, user="bob")
        assert all(h.chunk.domain != "alice_private" for h in hits), domains
    assert km.search("okapi ledger vault", domains=["alice_private"], k=1, user="alice")[0].chunk.domain == "alice_private"


@pytest.mark.anyio
async def test_async_search_applies_the_same_rule(km):
    hits = await km.asearch("okapi ledger vault", domains=["alice_private"], k=5, user="bob")
    assert hits == []


def test_writes_to_shared_or_foreign_domains_are_refused(km, tmp_path):
    for user, domain in (("bob", "alice_private"), ("bob", "handbook")):
        with pytest.raises(ForbiddenError, match="read-only for you"):
            km.check_write(domain, user)
        with pytest.raises(ForbiddenError):
            km.ingest(tmp_path / "bob", domain, progress=False, user=user)
    km.check_write("handbook", "root", admin=True)  # an admin may extend a shared domain...
    with pytest.raises(ForbiddenError):
        km.check_write("alice_private", "root", admin=True)  # ...but not a user's private one
    km.check_write("bob_new", "bob")  # a new name is fine
    assert km.remove_domain("alice_private", user="bob") is False  # invisible, so "no such domain"
    assert "alice_private" in names(km.domains())


def test_bad_names_are_refused_before_anything_happens(km):
    for bad in (".", "..", "../files", "a/b", "", "x" * 65):
        with pytest.raises(ConfigError, match="bad knowledge domain name"):
            km.check_write(bad, "bob")


def test_admin_shared_upload_and_shared_domains_filter(km, tmp_path):
    km.ingest(tmp_path / "shared", "announcements", progress=False, user="root", admin=True, shared=True)
    assert "announcements" in names(km.domains(user="bob"))
    km.shared_domains = frozenset({"handbook"})
    assert names(km.domains(user="bob")) == ["bob_notes", "handbook"]
    assert km.search("walrus", domains=["announcements"], k=3, user="bob") == []
