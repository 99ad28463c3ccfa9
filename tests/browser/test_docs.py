"""The API docs page renders offline: its bundle comes from the app, and it runs under its own policy."""

from __future__ import annotations

from tests.browser.test_security import watch_csp


def test_the_docs_render_with_no_network_and_no_policy_violation(page):
    violations = watch_csp(page)
    page.goto("/docs")
    page.wait_for_selector("#operations-attention-attention_api_v1_attention_post")
    assert page.watch.foreign_requests == []
    assert violations == []
    assert page.watch.errors == []
