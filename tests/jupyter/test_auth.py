"""Jupyter's auth on every Studio endpoint: tokens, origin, XSRF, authorization, ownership."""

from __future__ import annotations

import json

import pytest
from jupyter_server.auth import Authorizer
from tornado.httpclient import HTTPClientError

from tests.jupyter.conftest import TwoUsers

NO_TOKEN = {"Authorization": ""}


@pytest.mark.parametrize("server_extra", [{"allow_unauthenticated_access": True},
                                          {"allow_unauthenticated_access": False}], ids=["allow", "deny"])
async def test_no_token_is_refused_everywhere(server_extra, jp_serverapp, jp_ws_fetch, jp_fetch):
    assert jp_serverapp.allow_unauthenticated_access is server_extra["allow_unauthenticated_access"]
    with pytest.raises(HTTPClientError) as ws_err:
        await jp_ws_fetch("studio", "api", "chat", headers=dict(NO_TOKEN))
    assert ws_err.value.code == 403
    for path in (("studio", "api", "pipeline"), ("studio", "api", "sessions"), ("studio", "api", "health")):
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch(*path, headers=dict(NO_TOKEN))
        assert err.value.code == 403, path
    # the page sends an anonymous browser to the login page (or refuses), never serves it
    with pytest.raises(HTTPClientError) as page_err:
        await jp_fetch("studio", headers=dict(NO_TOKEN), follow_redirects=False)
    assert page_err.value.code in (302, 403)
    # and with the token everything answers
    ws = await jp_ws_fetch("studio", "api", "chat")
    ws.close()
    assert (await jp_fetch("studio", "api", "health")).code == 200


ROUTES = [("GET", ("pipeline",)), ("PUT", ("pipeline", "nodes", "knowledge_rag")), ("GET", ("sessions",)),
          ("GET", ("sessions", "s1")), ("DELETE", ("sessions", "s1")), ("GET", ("sessions", "s1", "export")),
          ("GET", ("knowledge",)), ("POST", ("knowledge", "d1", "files")), ("GET", ("search",)),
          ("GET", ("health",)), ("GET", ("sessions", "s1", "trace")), ("GET", ("pipeline", "variants")),
          ("PUT", ("pipeline", "variants"))]


@pytest.mark.parametrize("server_extra", [{"identity_provider_class": TwoUsers}])
async def test_every_route_refuses_no_token_and_a_wrong_token(server_extra, jp_fetch, jp_ws_fetch):
    """Issue #11 "what held": every REST route and the socket answer 403 to strangers."""
    for headers in ({"Authorization": ""}, {"Authorization": "token mallory-token"}):
        with pytest.raises(HTTPClientError) as ws_err:
            await jp_ws_fetch("studio", "api", "chat", headers=dict(headers))
        assert ws_err.value.code == 403
        for method, parts in ROUTES:
            body = b"{}" if method in ("PUT", "POST") else None
            with pytest.raises(HTTPClientError) as err:
                await jp_fetch("studio", "api", *parts, method=method, body=body, headers=dict(headers),
                               params={"q": "x"})
            assert err.value.code == 403, (headers, method, parts)


async def _login_cookie(jp_fetch, port) -> str:
    """What a browser holds after opening the page with ?token=: the login cookie and _xsrf.

    The cookie's name carries the host, so the page is fetched as the websocket client
    will connect (localhost).
    """
    r = await jp_fetch("studio", "", headers={"Host": f"localhost:{port}"})
    cookies = [c.split(";", 1)[0] for c in r.headers.get_list("Set-Cookie")]
    assert any(c.startswith("username-") for c in cookies), cookies
    return "; ".join(cookies)


async def test_cross_origin_websocket_is_refused(jp_serverapp, jp_fetch, jp_ws_fetch, jp_http_port):
    cookie = await _login_cookie(jp_fetch, jp_http_port)
    same = {"Authorization": "", "Cookie": cookie, "Origin": f"http://localhost:{jp_http_port}"}
    ws = await jp_ws_fetch("studio", "api", "chat", headers=same)  # the page's own origin works
    ws.close()
    evil = {"Authorization": "", "Cookie": cookie, "Origin": "http://evil.example.com"}
    with pytest.raises(HTTPClientError) as err:
        await jp_ws_fetch("studio", "api", "chat", headers=evil)
    assert err.value.code == 403


async def test_browser_post_needs_the_xsrf_token(jp_serverapp, jp_fetch, jp_http_port):
    cookie = await _login_cookie(jp_fetch, jp_http_port)
    xsrf = next(c.split("=", 1)[1] for c in cookie.split("; ") if c.startswith("_xsrf="))
    body = json.dumps({"enabled": True})
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("studio", "api", "pipeline", "nodes", "tool_executor", method="PUT", body=body,
                       headers={"Authorization": "", "Cookie": cookie, "Host": f"localhost:{jp_http_port}"})
    assert err.value.code == 403
    r = await jp_fetch("studio", "api", "pipeline", "nodes", "tool_executor", method="PUT", body=body,
                       headers={"Authorization": "", "Cookie": cookie, "X-XSRFToken": xsrf,
                                "Host": f"localhost:{jp_http_port}"})
    assert json.loads(r.body) == {"name": "tool_executor", "enabled": True}


class NoChatForBob(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return not (user.username == "bob" and resource == "studio_nb:chat")


ALICE = {"Authorization": "token alice-token"}
BOB = {"Authorization": "token bob-token"}


@pytest.mark.slow
@pytest.mark.parametrize("server_extra", [{"identity_provider_class": TwoUsers}])
async def test_one_user_cannot_touch_another_users_session(server_extra, studio_ws, jp_fetch):
    alice = await studio_ws(headers=dict(ALICE))
    await alice.send({"message": "my secret plan", "session_id": "alice-only", "request_id": "a1"})
    assert (await alice.until_done("a1"))[-1]["type"] == "done"

    r = await jp_fetch("studio", "api", "sessions", "alice-only", headers=dict(ALICE))
    assert json.loads(r.body)["turns"][0]["question"] == "my secret plan"

    # another user's session answers exactly like a missing one (F6: ids cannot be probed)
    for method, parts in [("GET", ()), ("GET", ("export",)), ("DELETE", ())]:
        answers = []
        for sid in ("alice-only", "no-such-session"):
            with pytest.raises(HTTPClientError) as err:
                await jp_fetch("studio", "api", "sessions", sid, *parts, method=method, headers=dict(BOB))
            body = json.loads(err.value.response.body)
            answers.append((err.value.code, body["code"], body["message"].replace(sid, "<id>")))
        assert answers[0] == answers[1] and answers[0][:2] == (404, "unknown_session"), (method, parts, answers)
    listed = json.loads((await jp_fetch("studio", "api", "sessions", headers=dict(BOB))).body)["sessions"]
    assert all(s["session_id"] != "alice-only" for s in listed)

    bob = await studio_ws(headers=dict(BOB))
    await bob.send({"type": "clear", "session_id": "alice-only"})
    assert (await bob.next_error())["code"] == "unknown_session"
    # a chat on that id starts bob's own session (ids are per user), which shows nothing of hers
    await bob.send({"message": "show me", "session_id": "alice-only", "request_id": "b1"})
    done = (await bob.until_done("b1"))[-1]
    assert done["type"] == "done" and "secret plan" not in json.dumps(done)
    # nothing of alice's was lost or joined
    r = await jp_fetch("studio", "api", "sessions", "alice-only", headers=dict(ALICE))
    assert len(json.loads(r.body)["turns"]) == 1


@pytest.mark.parametrize("server_extra", [{"identity_provider_class": TwoUsers, "authorizer_class": NoChatForBob}])
async def test_authorizer_can_deny_chat(server_extra, jp_ws_fetch):
    with pytest.raises(HTTPClientError) as err:
        await jp_ws_fetch("studio", "api", "chat", headers=dict(BOB))
    assert err.value.code == 403
    ws = await jp_ws_fetch("studio", "api", "chat", headers=dict(ALICE))
    ws.close()
