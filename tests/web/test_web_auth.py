"""The web UI's door, in a real browser against a real ``plush serve --http``: the token once in the URL or
through the login form gives an HttpOnly, SameSite=Strict cookie; without it the shell sends to /login and the
API answers 401; a cookie request that changes anything needs X-Plush-Client; what hosts are called is text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from web_support import WAIT, sign_in, web_served


def _cookie(page: Any) -> dict[str, Any]:
    cookies = [c for c in page.context.cookies() if c["name"].startswith("plush_")]
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_the_token_in_the_url_once_gives_a_strict_http_only_cookie_and_leaves_the_address_bar(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    with web_served(tmp_path, hosts=3) as web:
        sign_in(page, web)
        assert page.url == web.url
        cookie = _cookie(page)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
        assert web.token not in cookie["value"]
        assert page.evaluate("document.cookie") == ""
        expect(page.locator("#status-connection")).to_have_text("connected", timeout=WAIT)
        expect(page.locator("#status-hosts")).to_contain_text("3 hosts", timeout=WAIT)
        page.screenshot(path=screenshots / "shell.png")
        # the cookie signs the page's API calls in; a change without the client header is refused
        answer = page.evaluate(
            """async () => {
                const bare = await fetch('/v1/quit', {method: 'POST', body: '{}'});
                const hosts = await fetch('/v1/hosts');
                return {status: bare.status, error: await bare.json(), hosts: hosts.status};
            }"""
        )
        assert answer["hosts"] == 200
        assert answer["status"] == 403 and "X-Plush-Client: web" in answer["error"]["error"]["message"]
        assert web.served.process.poll() is None  # not quit
        assert web.token not in web.served.err()


def test_without_the_cookie_the_shell_goes_to_login_and_the_login_form_checks_the_token(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    with web_served(tmp_path, hosts=1) as web:
        page.goto(web.url)
        assert page.url == web.url + "login"
        assert page.request.get(web.url + "v1/hosts").status == 401
        page.fill("#token", "not-the-token")
        page.click("button[type=submit]")
        expect(page.locator("#error")).to_be_visible(timeout=WAIT)
        expect(page.locator("#error")).to_have_text("That is not this controller's token.")
        page.screenshot(path=screenshots / "login.png")
        page.fill("#token", web.token)
        page.click("button[type=submit]")
        page.wait_for_selector("main#view > section", timeout=WAIT)
        assert page.url == web.url
        assert page.request.get(web.url + "v1/hosts").status == 200
        page.click("#sign-out")
        page.wait_for_url(web.url + "login", timeout=WAIT)
        assert page.request.get(web.url + "v1/hosts").status == 401
