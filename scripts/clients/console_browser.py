#!/usr/bin/env python3
"""The web console (/ui/) in a real browser: Debian's Chromium, driven by Selenium, against
`keyward serve --dev` over HTTPS.

1. sign in with a token, create a key, rotate it, and see the timeline show the rotation;
2. disable the key in the console, and see an encrypt through the API refused;
3. a principal whose policy covers only some keys sees and can act on only those keys;
4. a description and an alias holding <script> and quotes are shown as text, never run;
5. a cross-site form post (a page on another origin that submits to the console) is refused,
   and so is a post with the session cookie but without the CSRF token;
6. a stolen session cookie is refused after sign-out, and after the idle expiry;
7. tokens (issued once, revoked), audit and health pages render for an admin;
8. every page is usable from the keyboard: controls labelled, buttons and links named, Tab
   moves the focus; a screenshot of each goes to SCREENSHOT_DIR (default
   .build/console-screenshots).

Usage: console_browser.py KEYWARD_BINARY [SCREENSHOT_DIR]
"""
import http.server, json, os, shutil, ssl, sys, threading, time, urllib.error, urllib.parse, urllib.request, uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hardening"))
from keyward_process import client, fail as failed, start, stop, workdir  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

binary = os.path.abspath(sys.argv[1])
shots = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else ".build/console-screenshots")
os.makedirs(shots, exist_ok=True)
work = workdir("keyward-console-")
root = "console-root-token-" + uuid.uuid4().hex
started = time.time()


def fail(message):
    failed("console", message)


def check(condition, message):
    if not condition:
        fail(message)


env = dict(os.environ, KEYWARD_CONSOLE_IDLE_MINUTES="1")
server, url = start([binary, "serve", "--dev", "--dev-dir", os.path.join(work, "dev"), "--port", "0", "--dev-root-token", root],
                    os.path.join(work, "serve.log"), env=env)
if server is None:
    fail("the server did not start:\n" + url)
ca = os.path.join(work, "dev", "ca.pem")
api = client(url, root, cafile=ca)
tls = ssl.create_default_context(cafile=ca)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


raw = urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls), NoRedirect)


def post_form(path, fields, cookie=None, origin=None):
    """POST a form outside the browser: (status, Location, body)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["Cookie"] = cookie
    if origin:
        headers["Origin"] = origin
    request = urllib.request.Request(url + path, method="POST", data=urllib.parse.urlencode(fields).encode(), headers=headers)
    try:
        with raw.open(request, timeout=30) as reply:
            return reply.status, reply.headers.get("Location"), reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location"), error.read().decode()


def get_page(path, cookie):
    request = urllib.request.Request(url + path, headers={"Cookie": cookie})
    try:
        with raw.open(request, timeout=30) as reply:
            return reply.status, reply.headers.get("Location"), reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location"), error.read().decode()


def sign_in_outside(token):
    """Signs in without the browser; returns the session cookie header."""
    with raw.open(urllib.request.Request(url + "/ui/login"), timeout=30) as reply:
        nonce = reply.headers.get("Set-Cookie").split(";")[0].split("=", 1)[1]
    request = urllib.request.Request(url + "/ui/login", method="POST", data=urllib.parse.urlencode({"csrf": nonce, "token": token}).encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": "keyward_login=" + nonce})
    try:
        raw.open(request, timeout=30)
    except urllib.error.HTTPError as error:
        check(error.code == 303 and error.headers.get("Location") == "/ui/keys", "sign-in outside the browser: %s" % error.code)
        for header in error.headers.get_all("Set-Cookie"):
            if header.startswith("keyward_session="):
                return header.split(";")[0]
    fail("no session cookie from the sign-in")


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400", "--disable-gpu"]:
        options.add_argument(flag)
    options.accept_insecure_certs = True  # the dev server's own CA; the API calls here check it
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def settled(driver, predicate, seconds=10):
    """Waits until predicate(driver) holds after a click (the next page may still be loading)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if predicate(driver):
                return True
        except Exception:
            pass
        time.sleep(0.1)
    return False


def shot(driver, name):
    """Saves a screenshot, after checking the page is usable without a mouse: every form control
    is labelled, every button and link has a name, and Tab moves the focus through the page."""
    unlabelled = driver.execute_script("""
        const named = (e) => (e.labels && e.labels.length > 0) || e.getAttribute('aria-label') || e.closest('label');
        const controls = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter(e => !named(e));
        const silent = [...document.querySelectorAll('button, a')].filter(e => !(e.textContent.trim() || e.getAttribute('aria-label')));
        return controls.map(e => e.outerHTML.slice(0, 80)).concat(silent.map(e => e.outerHTML.slice(0, 80)));""")
    check(not unlabelled, "%s: controls without a label or name: %s" % (name, unlabelled))
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    first = driver.switch_to.active_element
    body.send_keys(Keys.TAB)
    check(first.tag_name in ("a", "button", "input", "select", "textarea", "summary") and driver.switch_to.active_element != first,
          "%s: Tab does not move the focus through the page" % name)
    driver.save_screenshot(os.path.join(shots, name + ".png"))


def sign_in(driver, token):
    driver.get(url + "/ui/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    check(settled(driver, lambda d: d.current_url.endswith("/ui/keys")), "after sign-in: %s: %s" % (driver.current_url, driver.find_element(By.TAG_NAME, "main").text[:300]))


def submit(driver, form_action_suffix, fields=None):
    """Fills and submits the form whose action ends with `form_action_suffix`."""
    for form in driver.find_elements(By.TAG_NAME, "form"):
        if form.get_attribute("method") == "post" and form.get_attribute("action").endswith(form_action_suffix):
            for name, value in (fields or {}).items():
                element = form.find_element(By.NAME, name)
                if element.tag_name == "select":
                    element.find_element(By.CSS_SELECTOR, "option[value='%s']" % value).click()
                else:
                    element.clear()
                    element.send_keys(value)
            form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            return
    fail("no form for %s on %s" % (form_action_suffix, driver.current_url))


# A session opened at the start, kept to be replayed after the idle expiry at the end.
idle_cookie = sign_in_outside(root)

# Another origin's page that posts a form to the console on load (the cross-site attack).
evil_dir = workdir("keyward-evil-")
evil_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=evil_dir))
threading.Thread(target=evil_server.serve_forever, daemon=True).start()
evil = "http://127.0.0.1:%d" % evil_server.server_address[1]

driver = browser()
try:
    # 1. Sign in, create a key, rotate it, see the rotation on the timeline.
    sign_in(driver, root)
    check(driver.execute_script("return document.cookie").find("keyward_session") < 0, "the session cookie is readable by script")
    cookie = next(c for c in driver.get_cookies() if c["name"] == "keyward_session")
    check(cookie["httpOnly"] and cookie["secure"] and cookie.get("sameSite") == "Strict", "session cookie flags: %s" % cookie)
    alias = "shop/orders-" + uuid.uuid4().hex[:6]
    submit(driver, "/ui/keys", {"spec": "AES-256-GCM", "alias": alias, "description": "orders at rest", "rotationDays": "90"})
    check(settled(driver, lambda d: "/ui/keys/" in d.current_url and alias in d.page_source), "create: %s" % driver.current_url)
    key_url = driver.current_url
    key_id = key_url.rsplit("/", 1)[1]
    check("rotated to v2" not in driver.page_source, "timeline before rotation")
    driver.find_element(By.ID, "rotate").click()
    check(settled(driver, lambda d: "rotated to v2" in d.page_source and "version 2 is now current" in d.page_source), "timeline after rotation: " + driver.find_element(By.TAG_NAME, "main").text[:600])
    marks = driver.find_elements(By.CSS_SELECTOR, "svg.timeline g.mark text")
    check(any(m.text == "rotated to v2" for m in marks), "the timeline chart draws the rotation: %s" % [m.text for m in marks])
    for i in range(5):
        api("POST", "/v1/keys/%s/encrypt" % key_id, {"plaintext": "aGVsbG8="})
    driver.get(key_url)
    shot(driver, "key")

    # 2. Disable in the console; an encrypt through the API is refused.
    status, _ = api("POST", "/v1/keys/%s/encrypt" % key_id, {"plaintext": "aGVsbG8="})
    check(status == 200, "encrypt before disable: %s" % status)
    driver.find_element(By.ID, "disable").click()
    check(settled(driver, lambda d: "The key is now disabled." in d.page_source), "disable in the console")
    status, reply = api("POST", "/v1/keys/%s/encrypt" % key_id, {"plaintext": "aGVsbG8="})
    check(status == 409 and reply["error"]["code"] == "wrong_state", "encrypt after a console disable: %s %s" % (status, reply))
    driver.find_element(By.ID, "enable").click()
    check(settled(driver, lambda d: "The key is now active." in d.page_source), "enable in the console")

    # 4. Hostile text is shown as text: a description in the page and in a form value, an alias
    # refused with its text echoed in the error page. No script runs (window.__xss stays unset).
    hostile = "<script>window.__xss=1</script>\"'><img src=x onerror=\"window.__xss=2\">"
    submit(driver, "/metadata", {"description": hostile, "tags": "note=" + hostile})
    check(settled(driver, lambda d: "Saved." in d.page_source), "save the description")
    check(driver.execute_script("return window.__xss") is None, "a script ran from the description")
    shown = driver.find_element(By.CSS_SELECTOR, "dd.description").text
    check(shown == hostile, "the description is not shown as typed: %r" % shown)
    check(driver.find_element(By.ID, "edit-description").get_attribute("value") == hostile, "the form value is not the text")
    check(len(driver.find_elements(By.CSS_SELECTOR, "main script, main img")) == 0, "markup from the description reached the page")
    # A tag set through the API while the page was open survives the page's save: the form
    # sends only the user's edits (the tags it showed travel with it).
    driver.get(key_url)
    status, reply = api("PATCH", "/v1/keys/%s" % key_id, {"tags": {"note": hostile, "team": "api"}})
    check(status == 200, "tag through the API: %s %s" % (status, reply))
    submit(driver, "/metadata", {"tags": "note=" + hostile + "\nadded=console"})
    check(settled(driver, lambda d: "Saved." in d.page_source), "save tags from a page loaded before the API's change")
    _, reply = api("GET", "/v1/keys/%s" % key_id)
    check(reply.get("tags") == {"note": hostile, "team": "api", "added": "console"}, "a stale tag form dropped or changed another's tag: %s" % reply.get("tags"))
    driver.get(key_url)
    submit(driver, "/aliases", {"alias": "<script>window.__xss=3</script>\"'"})
    check(settled(driver, lambda d: "must be 1 to 256 letters" in d.page_source) and driver.execute_script("return window.__xss") is None, "hostile alias")
    check("<script>window.__xss=3</script>" in driver.find_element(By.CSS_SELECTOR, "p.error").text, "the refused alias is shown as text")
    driver.get(key_url)

    # 5. Cross-site: a page on another origin auto-submits a rotate form. SameSite=Strict keeps
    # the cookie off it and the origin check refuses it; the key's version is unchanged.
    _, before = api("GET", "/v1/keys/%s" % key_id)
    with open(os.path.join(evil_dir, "attack.html"), "w") as page:
        page.write('<form id=f method=post action="%s/ui/keys/%s/rotate"><input name=csrf value=guess></form>'
                   '<script>document.getElementById("f").submit()</script>' % (url, key_id))
    driver.get(evil + "/attack.html")
    time.sleep(1.5)
    _, after = api("GET", "/v1/keys/%s" % key_id)
    check(after["currentVersion"] == before["currentVersion"], "a cross-site post rotated the key")
    session_cookie = "keyward_session=" + cookie["value"]
    status, _, body = post_form("/ui/keys/%s/rotate" % key_id, {}, cookie=session_cookie)
    check(status == 403 and "CSRF" in body, "a post without the CSRF token: %s" % status)
    status, _, body = post_form("/ui/keys/%s/rotate" % key_id, {"csrf": "x" * 43}, cookie=session_cookie, origin=evil)
    check(status == 403, "a post from another origin: %s" % status)
    _, after = api("GET", "/v1/keys/%s" % key_id)
    check(after["currentVersion"] == before["currentVersion"], "a refused post rotated the key")

    # 7. Admin pages: keys, tokens (a token issued is shown once), audit, health.
    driver.get(url + "/ui/keys")
    shot(driver, "keys")
    driver.get(url + "/ui/tokens")
    submit(driver, "/ui/tokens", {"principal": "team-a", "rules": "*:alias=team-a/*", "hours": "2"})
    check(settled(driver, lambda d: d.find_element(By.ID, "issued")), "the token page")
    limited = driver.find_element(By.ID, "issued").get_attribute("value")
    check(limited.startswith("kw_"), "issued token")
    shot(driver, "token-issued")
    driver.get(url + "/ui/tokens")
    check(limited not in driver.page_source, "the token text is shown again")
    shot(driver, "tokens")
    driver.get(url + "/ui/audit")
    driver.find_element(By.ID, "verify-chain").click()
    check(settled(driver, lambda d: "The audit chain verifies" in d.page_source), "audit verify")
    check("/ui/keys/{key}/rotate" in driver.page_source, "the audit names the console route")
    shot(driver, "audit")

    # 3. A principal limited to team-a/* sees and acts on only those keys.
    status, mine = api("POST", "/v1/keys", {"spec": "AES-256-GCM", "aliases": ["team-a/ledger"]})
    check(status == 201, "create team-a key")
    status, theirs = api("POST", "/v1/keys", {"spec": "AES-256-GCM", "aliases": ["team-b/payroll"]})
    check(status == 201, "create team-b key")
    driver.find_element(By.CSS_SELECTOR, "form.signout button").click()
    check(settled(driver, lambda d: d.current_url.endswith("/ui/login")), "sign-out")
    # 6. The stolen cookie after sign-out.
    status, location, _ = get_page("/ui/keys", session_cookie)
    check(status == 303 and location == "/ui/login", "a cookie after sign-out: %s %s" % (status, location))
    sign_in(driver, limited)
    page = driver.page_source
    check("team-a/ledger" in page and "team-b/payroll" not in page and alias not in page, "the limited list")
    check("/ui/tokens" not in page and "/ui/audit" not in page, "admin navigation shown to a limited principal")
    driver.get(url + "/ui/keys/" + theirs["id"])
    check(driver.find_element(By.TAG_NAME, "h1").text.startswith("403"), "another team's key page: %s" % driver.find_element(By.TAG_NAME, "h1").text)
    limited_cookie = "keyward_session=" + next(c for c in driver.get_cookies() if c["name"] == "keyward_session")["value"]
    csrf = driver.find_element(By.CSS_SELECTOR, "form.signout input[name=csrf]").get_attribute("value")
    status, _, _ = post_form("/ui/keys/%s/rotate" % theirs["id"], {"csrf": csrf}, cookie=limited_cookie)
    check(status == 403, "a rotate of another team's key: %s" % status)
    _, still = api("GET", "/v1/keys/%s" % theirs["id"])
    check(still["currentVersion"] == 1, "another team's key was rotated")
    status, location, _ = post_form("/ui/keys/%s/rotate" % mine["id"], {"csrf": csrf}, cookie=limited_cookie)
    check(status == 303, "a rotate of its own key: %s" % status)
    driver.get(url + "/ui/tokens")
    check(driver.find_element(By.TAG_NAME, "h1").text.startswith("403"), "the tokens page for a limited principal")
    driver.find_element(By.CSS_SELECTOR, "form.signout button").click()
    check(settled(driver, lambda d: d.current_url.endswith("/ui/login")), "sign-out")
    shot(driver, "login")

    # 6. The idle expiry (one minute in this run): the first session, unused since the start.
    # Meanwhile some API traffic (bounded by time) for the health page's charts.
    while time.time() - started < 62:
        api("POST", "/v1/keys/%s/encrypt" % mine["id"], {"plaintext": "aGVsbG8="})
        time.sleep(0.02)
    status, location, _ = get_page("/ui/keys", idle_cookie)
    check(status == 303 and location == "/ui/login", "a cookie past its idle expiry: %s %s" % (status, location))

    sign_in(driver, root)
    driver.get(url + "/ui/health")
    check(driver.find_element(By.ID, "readiness").text == "ready", "health readiness")
    check(len(driver.find_elements(By.CSS_SELECTOR, "svg.lines polyline")) == 3, "health charts")
    shot(driver, "health")
finally:
    driver.quit()
evil_server.shutdown()
stop(server)
print("console: ok: sign-in, create, rotate on the timeline, disable refusing the API, a limited principal's view, "
      "hostile text shown as text, a tag form saved after an API change keeping that change, cross-site and CSRF-less posts refused, cookies refused after sign-out and idle expiry; "
      "screenshots in %s (%.0f s)" % (shots, time.time() - started))
