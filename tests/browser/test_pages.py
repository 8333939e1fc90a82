"""A person in a browser: sign up, get approved, log in, and see datasets on the Floyd pages."""

from __future__ import annotations

from floyd.client import FloydClient
from floyd.client.transfer import upload
from tests.support.browser import login
from tests.support.platform import Platform, write_tree


def test_admin_sees_datasets_page(page, platform: Platform, tmp_path) -> None:
    admin = platform.admin
    admin.api("POST", "datasets", json={"name": "browser-data", "description": "seen in a browser"})
    tree = write_tree(tmp_path / "t", {"a.txt": b"a", "b/c.txt": b"c"})
    upload(FloydClient(platform.url, admin.token), "admin", "browser-data", tree, "from the test")
    password = (platform.root / "admin-password").read_text().strip()
    login(page, platform, "admin", password)
    page.goto(platform.url + "services/floyd/")  # HubOAuth: through the hub's authorize page and back
    page.wait_for_selector("#datasets")
    row = page.locator("#datasets tr", has_text="admin/browser-data")
    assert "admin/browser-data:1" in row.inner_text()
    row.locator("a").click()
    page.wait_for_selector("#versions")
    assert "from the test" in page.locator("#versions").inner_text()
    assert "admin (admin)" in page.locator("header").inner_text()


def test_signup_approval_login(page, platform: Platform) -> None:
    page.goto(platform.url + "hub/signup")
    page.fill("#username_input", "dana")
    page.fill("#password_input", "dana-secret-pw")
    page.fill("#password_confirmation_input", "dana-secret-pw")
    page.click("input[type=submit]")
    page.wait_for_load_state()
    # Not approved yet: the login fails.
    page.goto(platform.url + "hub/login")
    page.fill("#username_input", "dana")
    page.fill("#password_input", "dana-secret-pw")
    page.click("#login_submit")
    page.wait_for_load_state()
    assert "/hub/login" in page.url
    # The admin approves dana on the authorization page.
    admin_ctx = page.context.browser.new_context()
    admin_page = admin_ctx.new_page()
    login(admin_page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    admin_page.goto(platform.url + "hub/authorize")
    admin_page.locator("tr", has_text="dana").locator("a", has_text="Authorize").click()
    admin_page.wait_for_load_state()
    admin_ctx.close()
    # Now dana gets in and sees her (empty) Floyd page.
    login(page, platform, "dana", "dana-secret-pw")
    page.goto(platform.url + "services/floyd/")
    page.wait_for_selector("#datasets")
    assert "No datasets yet" in page.locator("#datasets").inner_text()
    assert "dana" in page.locator("header .user").inner_text()


def test_dataset_page_lists_files_a_page_at_a_time(page, platform: Platform, tmp_path) -> None:
    """The flat list of every file (?recursive=1) follows the files API's cursor: "Next page" until the
    last, each file once (tests/browser/test_dataset_pages.py browses the folders)."""
    admin = platform.admin
    admin.api("POST", "datasets", json={"name": "paged-files"})
    names = ["a.txt", "b c&d.txt", "dir/e+f.txt", "dir/g#h.txt", "é.txt"]
    tree = write_tree(tmp_path / "t", {n: n.encode() for n in names})
    upload(FloydClient(platform.url, admin.token), "admin", "paged-files", tree, "five files")
    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    page.goto(platform.url + "services/floyd/datasets/admin/paged-files?limit=2&recursive=1")
    seen: list[str] = []
    for _ in range(len(names)):
        page.wait_for_selector("#files")
        rows = page.locator("#files tbody tr td:first-child").all_inner_texts()
        assert 0 < len(rows) <= 2
        seen += rows
        if page.locator("#files-next").count() == 0:
            break
        page.locator("#files-next").click()
        page.wait_for_load_state()
        assert page.locator("#files-first").count() == 1
    assert seen == sorted(names, key=lambda n: n.encode())
    assert "admin/paged-files:1" in page.locator("h3").inner_text()
