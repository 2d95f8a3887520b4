"""The home page, the one navigation bar, links both ways between admin objects and their pages,
and every page at 1,280 px and 390 px with no sideways scrolling of the page itself."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from goldsets.freeze import FreezeRule
from goldsets.services import goldset_version_build, goldset_version_freeze_request
from policies.models import PolicyVersion
from policies.services import policy_version_create_draft
from tests.browser.conftest import admin_login
from tests.goldsets.conftest import label_items
from tests.home.data import home_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 390)
# The page may not scroll sideways; a wide table or chart scrolls inside its own box.
OVERFLOW = """() => {
  const page = document.scrollingElement.scrollWidth;
  const culprits = [...document.querySelectorAll("body *")].filter(el => {
    const box = el.getBoundingClientRect();
    if (box.right <= window.innerWidth + 1 || box.width === 0) return false;
    for (let up = el.parentElement; up; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (["auto", "scroll", "hidden"].includes(style.overflowX)) return false;
    }
    return true;
  }).slice(0, 5).map(el => el.tagName + (el.id ? "#" + el.id : "") + "." + el.className + " → " +
                             Math.round(el.getBoundingClientRect().right));
  return {page, inner: window.innerWidth, culprits};
}"""


def follow(page, selector: str) -> str:
    """Click a link or button and wait for the page it opens; its path."""
    with page.expect_navigation():
        page.click(selector)
    return urlsplit(page.url).path


def assert_fits(page, label: str) -> None:
    found = page.evaluate(OVERFLOW)
    assert found["page"] <= found["inner"], \
        f"{label}: page {found['page']} px > {found['inner']} px: {found['culprits']}"


@pytest.fixture
def world(published, django_user_model, author):
    world = home_world(published)
    # a second golden-set version, 60 items added (the diff's list of ids)
    label_items(published, [["insult", "insult"]] * 60, source="pairs", start=1000)
    second = goldset_version_build(version_id=goldset_version_freeze_request(
        name="harassment-gold", policy_version=published, rule=FreezeRule(min_labels=2), changelog="pairs").pk)
    draft = policy_version_create_draft(from_version=published, acting_user=author)
    PolicyVersion.objects.filter(pk=draft.pk).update(text=draft.text + "\n5. Coordinated pile-ons, where many accounts "
                                                     "reply to one person within minutes with the same insult or a "
                                                     "variant of it, count as threats (HAR-5) even when each reply "
                                                     "alone would be an insult.")
    django_user_model.objects.create_superuser("boss", password="pw-boss")
    return world, second, draft


def test_home_page_navigation_and_links_both_ways(page, world, artifacts_dir: Path) -> None:
    world, _, _ = world
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)

    page.goto("/")
    assert urlsplit(page.url).path == "/admin/login/" and "next=/" in page.url  # anonymous → admin login
    admin_login(page, "boss", "pw-boss")
    page.goto("/")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, f"home at {width}")
        page.screenshot(path=str(shots / f"30-home-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.inner_text("#ts-topbar .ts-username") == "boss"
    assert page.locator("#runs tbody tr").count() == 2 and "5 / 20 (25 %)" in page.inner_text("#runs")
    assert "$0.0125" in page.inner_text("#runs")
    assert page.locator("#queues tbody tr").count() == 1 and "acme" in page.inner_text("#queues")
    assert "Krippendorff" in page.inner_text("#goldsets") and " – " in page.inner_text("#goldsets .ci")

    # home → run page → its admin page → "View on site" → run page
    assert follow(page, f"#runs >> text={world.running.name}") == f"/runs/{world.running.pk}/"
    assert follow(page, "#admin-link") == f"/admin/runs/labelingrun/{world.running.pk}/change/"
    assert page.locator("#ts-topbar").count() == 1 and page.locator("#ts-topbar #logout-form").count() == 1
    assert follow(page, "text=View on site") == f"/runs/{world.running.pk}/"

    # queues: home → queue page → queue's admin page → back
    page.goto("/")
    assert follow(page, "#queues >> text=acme") == "/queues/"
    assert follow(page, "#queue-acme .admin-link") == f"/admin/review/reviewqueue/{world.waiting_queue.pk}/change/"
    assert follow(page, "text=View on site") == "/queues/" and page.url.endswith("#queue-acme")

    # golden sets: home → latest version → its admin page → back; the set's admin page → its page
    page.goto("/")
    assert follow(page, "#goldsets >> text=v2") == "/goldsets/harassment-gold/v2/"
    assert follow(page, "#admin-link").startswith("/admin/goldsets/goldensetversion/")
    assert follow(page, "text=View on site") == "/goldsets/harassment-gold/v2/"
    page.goto(f"/admin/goldsets/goldenset/{world.version.golden_set_id}/change/")
    assert follow(page, "text=View on site") == "/goldsets/harassment-gold/"

    # the admin index links to the pages; "View site" is the home page
    page.goto("/admin/")
    assert page.locator("#ts-pages a[href='/queues/']").count() == 1
    assert follow(page, "#ts-pages >> text=Home") == "/"

    # log out from a page: a POST, then the home page asks to sign in again
    follow(page, "#ts-topbar #logout-form button")
    page.goto("/")
    assert urlsplit(page.url).path == "/admin/login/"


def test_every_page_fits_at_1280_and_390(page, world, artifacts_dir: Path) -> None:
    world, second, draft = world
    shots = artifacts_dir / "browser" / "layouts"
    shots.mkdir(parents=True, exist_ok=True)
    admin_login(page, "boss", "pw-boss")
    pages = {
        "home": "/",
        "run": f"/runs/{world.running.pk}/",
        "queues": "/queues/",
        "goldset": "/goldsets/harassment-gold/",
        "goldset-version": "/goldsets/harassment-gold/v2/",
        "goldset-diff": "/goldsets/harassment-gold/diff/1/2/",
        "admin-index": "/admin/",
        "draft-edit": f"/admin/policies/policyversion/{draft.pk}/change/",
        "policy-diff": f"/admin/policies/policyversion/{draft.pk}/diff/",
        "policy-versions": "/admin/policies/policyversion/",
        "audit-log": "/admin/touchstone/auditevent/",
        "runs-list": "/admin/runs/labelingrun/",
        "run-admin": f"/admin/runs/labelingrun/{world.running.pk}/change/",
        "queue-admin": f"/admin/review/reviewqueue/{world.waiting_queue.pk}/change/",
        "goldset-admin": f"/admin/goldsets/goldenset/{second.golden_set_id}/change/",
    }
    problems = []
    for name, url in pages.items():
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(url)
            try:
                assert_fits(page, f"{name} at {width}")
            except AssertionError as exc:
                problems.append(str(exc))
            page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    assert not problems, "\n".join(problems)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/goldsets/harassment-gold/diff/1/2/")
    assert [c.strip() for c in page.locator("#diff-counts .card .muted").all_inner_texts()] == [
        "Added", "Removed", "Gold label changed", "Unchanged"]
    assert page.locator("#added li").count() == 60
    page.goto(f"/admin/policies/policyversion/{draft.pk}/diff/")
    header = page.locator("#policy-diff thead th.diff_header").first.bounding_box()
    text_cell = page.locator("#policy-diff tbody td:not(.diff_header):not(.diff_next)").first.bounding_box()
    assert header and text_cell and header["x"] <= text_cell["x"] + 60  # the title sits over its text
    assert ">" not in page.locator("#policy-diff td.diff_header").all_inner_texts()  # no mid-word cut markers
    page.goto("/queues/")
    assert "κ vs gold" in page.locator("#queue-acme table.labelers thead").inner_text()


def test_api_docs_load_nothing_from_the_internet(page, django_user_model, artifacts_dir: Path) -> None:
    django_user_model.objects.create_superuser("boss", password="pw-boss")
    admin_login(page, "boss", "pw-boss")
    outside = []

    def local_only(route) -> None:  # whatever would leave the machine is recorded and refused
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.goto("/api/redoc/")
    page.wait_for_selector("[role=navigation], .menu-content", timeout=30_000)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts_dir / "browser" / "13-api-redoc.png"))
    assert "fonts.googleapis" not in page.content()
    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    page.wait_for_load_state("networkidle")
    assert not outside, outside
