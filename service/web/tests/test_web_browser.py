#!/usr/bin/python3
"""The web console in a real browser: Debian's headless Chromium driven by
chromium-driver and python3-selenium, against a fleet of simulated devices
(Mosquitto, otter-service, otter-device x3, otter-web).

An operator logs in, sees the fleet, creates a job from the signed image for
the group and watches every device reach SUCCEEDED on the job's page (pushed
by Server-Sent Events, the page is never reloaded), cancels another job, sees
a job of a failing image aborted by its abort rule, sees markup a device
wrote shown as text, edits groups (static and dynamic, members) and a thing's
attributes (markup shown as text), uploads firmware with a security counter
and then firmware without one (the page shows the rollback warning before
going to the job), and logs out; a viewer sees no way to change anything. Screenshots of each page go to $OTTER_SCREENSHOT_DIR.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from web_fleet import OPERATOR, VIEWER, Client, Fleet, wait_for  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402

DEVICES = ("dev-1", "dev-2", "dev-3")
MARKUP = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b>'
# Attribute values hold no '"'.
ATTR_MARKUP = "<img src=x onerror=window.__xss=3><script>window.__xss=4</script><b>bold</b>"
# A line break that would forge a "reason" line in the device's own cell, and a bidi
# override; shown as escapes.
FORGED_LINE = "ok\nreason: accepted v9.9.9\u202e"
FORGED_SHOWN = "detail: ok\\x0areason: accepted v9.9.9\\u202e"
SHOTS = os.environ.get("OTTER_SCREENSHOT_DIR", "screenshots")


def browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run",
              "--disable-dev-shm-usage", "--window-size=1280,900",
              "--user-data-dir=" + profile):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def shot(drv, name):
    os.makedirs(SHOTS, exist_ok=True)
    drv.save_screenshot(os.path.join(SHOTS, name + ".png"))


def login(drv, fleet, user, password):
    drv.get(fleet.url + "/login.html")
    drv.find_element(By.ID, "user").send_keys(user)
    drv.find_element(By.ID, "password").send_keys(password)
    drv.find_element(By.ID, "login").click()
    WebDriverWait(drv, 20).until(EC.presence_of_element_located((By.CSS_SELECTOR,
                                                                 "#things tr")))


def row_text(drv, table, attr, key):
    """A row's text, read in one step (the page may redraw the table meanwhile)."""
    return drv.execute_script("const r = document.querySelector(arguments[0]);"
                              "return r ? r.innerText : '';",
                              "#%s tr[%s='%s']" % (table, attr, key))


def fleet_online(drv):
    """Reloads the fleet page, waits for its table (filled by a request after the
    page loads) and tells whether every device shows online."""
    drv.refresh()
    WebDriverWait(drv, 20).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#things tr")) == len(DEVICES) + 2)
    return all("online" in row_text(drv, "things", "data-thing", x) for x in DEVICES)


def statuses(drv):
    """The status of each device on the job page, read in one step."""
    return drv.execute_script("return [...document.querySelectorAll('#executions tr')]"
                              ".map(r => r.dataset.status);")


def text_of(drv, element_id):
    return drv.execute_script("const e = document.getElementById(arguments[0]);"
                              "return e ? e.innerText : '';", element_id)


def image_label(drv, version):
    """The option of the image of this version."""
    for o in drv.find_elements(By.CSS_SELECTOR, "#image option"):
        if o.text.startswith(version + " "):
            return o.text
    raise AssertionError("no image of version " + version)


def plant_markup(fleet):
    """The device 'evil' reports markup in its statusDetails, through the broker."""
    fleet.report("evil", "seed", {"status": "IN_PROGRESS",
                                  "statusDetails": {"note": MARKUP, "detail": FORGED_LINE}})
    c = Client(fleet.url)
    c.login(*VIEWER)
    wait_for(lambda: (c.json("GET", "/api/v1/things/evil")[1]["currentJob"] or {})
             .get("statusDetails", {}).get("note") == MARKUP, 20, "the planted details")


def no_markup_ran(drv):
    assert drv.execute_script("return window.__xss === undefined"), "planted script ran"
    assert not drv.find_elements(By.CSS_SELECTOR, "main img, main script"), \
        "planted markup became elements"
    assert not drv.find_elements(By.XPATH, "//main//b[text()='bold']"), "planted <b> became bold"


def group_members(drv, name):
    return drv.execute_script(
        "return [...document.querySelectorAll(\"section[data-group='\" + arguments[0] + "
        "\"'] li\")].map(l => l.dataset.member);", name)


def edit_groups_and_attributes(drv, fleet):
    """An operator makes a static group, adds and removes a member, makes a dynamic group,
    sets attributes on a thing's page (one holding markup, shown as text), sees the dynamic
    group follow, and deletes the static group; the store says the same."""
    drv.get(fleet.url + "/groups.html")
    WebDriverWait(drv, 20).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, "section[data-group='lab']")))
    WebDriverWait(drv, 20).until(EC.visibility_of_element_located((By.ID, "group-name")))
    drv.find_element(By.ID, "group-name").send_keys("field")
    drv.find_element(By.ID, "create-group").click()
    WebDriverWait(drv, 20).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, "select[data-add-select='field']")))
    Select(drv.find_element(By.CSS_SELECTOR, "select[data-add-select='field']")) \
        .select_by_value("dev-1")
    drv.find_element(By.CSS_SELECTOR, "button[data-add='field']").click()
    WebDriverWait(drv, 20).until(lambda d: group_members(d, "field") == ["dev-1"])
    drv.find_element(By.ID, "group-name").send_keys("sims")
    drv.find_element(By.ID, "group-query").send_keys("site=lab9")
    drv.find_element(By.ID, "create-group").click()
    WebDriverWait(drv, 20).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, "section[data-group='sims'] code.query")))
    assert group_members(drv, "sims") == [], "nobody matches yet"
    assert not drv.find_elements(By.CSS_SELECTOR, "button[data-add='sims']"), \
        "a dynamic group has no members by hand"
    # A bad query: the server's message, nothing made.
    drv.find_element(By.ID, "group-name").send_keys("bad")
    drv.find_element(By.ID, "group-query").send_keys("site")
    drv.find_element(By.ID, "create-group").click()
    WebDriverWait(drv, 20).until(lambda d: "bad query" in text_of(d, "error"))
    assert not drv.find_elements(By.CSS_SELECTOR, "section[data-group='bad']")
    shot(drv, "10d-groups")

    drv.get(fleet.url + "/thing.html?name=dev-2")
    WebDriverWait(drv, 20).until(EC.visibility_of_element_located((By.ID, "attr-key")))
    for key, value in (("site", "lab9"), ("note", ATTR_MARKUP)):
        drv.find_element(By.ID, "attr-key").clear()
        drv.find_element(By.ID, "attr-key").send_keys(key)
        drv.find_element(By.ID, "attr-value").send_keys(value)
        drv.find_element(By.ID, "attr-set").click()
        WebDriverWait(drv, 20).until(lambda d: value in row_text(d, "attributes", "data-key", key))
    no_markup_ran(drv)
    shot(drv, "10e-thing-attributes")
    drv.get(fleet.url + "/groups.html")
    WebDriverWait(drv, 20).until(lambda d: group_members(d, "sims") == ["dev-2"])
    drv.find_element(By.CSS_SELECTOR, "section[data-group='field'] button[data-remove='dev-1']") \
        .click()
    WebDriverWait(drv, 20).until(lambda d: group_members(d, "field") == [])
    drv.find_element(By.CSS_SELECTOR, "button[data-delete='field']").click()
    WebDriverWait(drv, 10).until(EC.alert_is_present())
    drv.switch_to.alert.accept()
    WebDriverWait(drv, 20).until(lambda d: not d.find_elements(
        By.CSS_SELECTOR, "section[data-group='field']"))
    out = fleet.cli("group", "list").stdout
    assert "sims" in out and "field" not in out, "the store has the edits: " + out
    assert "lab9" in fleet.cli("thing", "show", "dev-2").stdout


def run(fleet, profile):
    drv = browser(profile)
    try:
        drv.get(fleet.url + "/index.html")
        WebDriverWait(drv, 20).until(EC.url_contains("/login.html"))
        shot(drv, "01-login")
        login(drv, fleet, *OPERATOR)
        rows = drv.find_elements(By.CSS_SELECTOR, "#things tr")
        assert len(rows) == len(DEVICES) + 2, "the fleet: %d rows" % len(rows)
        for d in DEVICES:
            assert "lab" in row_text(drv, "things", "data-thing", d), "group of " + d
        # Presence from the broker, through the service's inventory.
        try:
            WebDriverWait(drv, 30, poll_frequency=1).until(lambda d: fleet_online(d))
        except TimeoutException:
            for x in DEVICES:
                print("%s: the page shows %r; the store has:\n%s" % (
                    x, row_text(drv, "things", "data-thing", x),
                    fleet.cli("thing", "show", x, check=False).stdout))
            raise AssertionError("not every device shows online")
        evil = row_text(drv, "things", "data-thing", "evil")
        assert MARKUP in evil, "the device's text shows as text: " + evil
        no_markup_ran(drv)
        shot(drv, "02-fleet")
        drv.get(fleet.url + "/thing.html?name=evil")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located((By.CSS_SELECTOR,
                                                                     "#history tr")))
        history = drv.find_element(By.ID, "history").text
        assert MARKUP in history
        assert FORGED_SHOWN in history, "the device's line break shown as an escape: " + history
        assert not re.search(r"^reason: accepted", history, re.M), "a forged line: " + history
        assert "\u202e" not in history, "a bidi override reached the page: " + history
        no_markup_ran(drv)
        shot(drv, "03-thing-markup-as-text")

        # A job for the group, from the signed image.
        drv.get(fleet.url + "/new-job.html")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, "#image option")))
        Select(drv.find_element(By.ID, "image")).select_by_visible_text(image_label(drv, "1.1.0"))
        drv.find_element(By.CSS_SELECTOR, "input[value='group:lab']").click()
        drv.find_element(By.ID, "jobId").send_keys("web-update")
        shot(drv, "04-new-job")
        drv.find_element(By.ID, "create").click()
        WebDriverWait(drv, 20).until(EC.url_contains("/job.html?id=web-update"))
        drv.execute_script("window.__sameDocument = 1")
        WebDriverWait(drv, 20).until(lambda d: len(statuses(d)) == len(DEVICES))
        seen_progress = False
        end = time.monotonic() + 180
        while time.monotonic() < end:
            st = statuses(drv)
            if "IN_PROGRESS" in st and not seen_progress:
                seen_progress = True
                shot(drv, "05-job-in-progress")
            if st and all(s == "SUCCEEDED" for s in st):
                break
            time.sleep(0.2)
        st = statuses(drv)
        assert st == ["SUCCEEDED"] * len(DEVICES), "every device SUCCEEDED: %s" % st
        WebDriverWait(drv, 20).until(
            lambda d: "COMPLETED" in text_of(d, "job-status"))
        assert drv.execute_script("return window.__sameDocument === 1"), \
            "the page was updated in place (events), not reloaded"
        bars = drv.find_elements(By.CSS_SELECTOR, "#executions .bar > span")
        assert all(b.value_of_css_property("width") != "0px" for b in bars), "full bars"
        shot(drv, "06-job-succeeded")

        # Cancel the other job from the jobs page.
        drv.get(fleet.url + "/jobs.html")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, "button[data-cancel='seed']")))
        assert not drv.find_elements(By.CSS_SELECTOR, "button[data-cancel='web-update']"), \
            "a finished job has no cancel button"
        drv.find_element(By.CSS_SELECTOR, "button[data-cancel='seed']").click()
        WebDriverWait(drv, 10).until(EC.alert_is_present())
        drv.switch_to.alert.accept()
        WebDriverWait(drv, 20).until(lambda d: "CANCELED" in row_text(d, "jobs", "data-job",
                                                                      "seed"))
        shot(drv, "07-jobs-canceled")

        # 1.2.0 fails its self-test: the abort rule stops the rollout at the first failure.
        drv.get(fleet.url + "/new-job.html")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, "#image option")))
        Select(drv.find_element(By.ID, "image")).select_by_visible_text(image_label(drv, "1.2.0"))
        drv.find_element(By.CSS_SELECTOR, "input[value='group:lab']").click()
        drv.find_element(By.ID, "jobId").send_keys("web-bad")
        drv.find_element(By.ID, "abortFailurePercent").send_keys("1")
        drv.find_element(By.ID, "abortMinFinished").send_keys("1")
        drv.find_element(By.ID, "create").click()
        WebDriverWait(drv, 20).until(EC.url_contains("/job.html?id=web-bad"))
        WebDriverWait(drv, 180).until(
            lambda d: "ABORTED" in text_of(d, "job-status"))
        st = statuses(drv)
        assert "FAILED" in st and "SUCCEEDED" not in st, "aborted rollout: %s" % st
        assert "abort at 1 % failed once 1 finished" in text_of(drv, "summary")
        WebDriverWait(drv, 20).until(lambda d: "ABORT_" in text_of(d, "job-reason"))
        shot(drv, "08-job-aborted")

        # The fleet shows what each device reports: 1.2.0 while it runs on trial,
        # 1.1.0 again once the bootloader has reverted it (a moment after the abort).
        deadline = time.monotonic() + 30
        while True:
            drv.get(fleet.url + "/index.html")
            WebDriverWait(drv, 20).until(EC.presence_of_element_located((By.CSS_SELECTOR,
                                                                         "#things tr")))
            versions = {d: row_text(drv, "things", "data-thing", d) for d in DEVICES}
            if all("1.1.0" in v for v in versions.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for d in DEVICES:
            assert "1.1.0" in versions[d], "version of %s: %s" % (d, versions[d])
        # A thing whose presence is unknown (what the service writes after a gap in its view
        # of broker 1) is shown neither online nor offline, and counted apart.
        fleet.presence_unknown("evil", (1,))
        drv.get(fleet.url + "/index.html")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located((By.CSS_SELECTOR,
                                                                     "#things tr")))
        evil = row_text(drv, "things", "data-thing", "evil")
        assert "unknown (seen" in evil and "online" not in evil, "evil unknown: " + evil
        cell = drv.find_element(By.CSS_SELECTOR, 'tr[data-thing="evil"] .presence')
        assert cell.get_attribute("data-online") == "unknown", "evil's cell marked unknown"
        assert "not known on broker 1" in cell.get_attribute("title"), "evil's tooltip"
        assert "1 unknown" in text_of(drv, "count"), "counted: " + text_of(drv, "count")
        shot(drv, "09-fleet-updated")
        fleet.presence_unknown("evil", ())
        drv.get(fleet.url + "/thing.html?name=dev-1")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located((By.CSS_SELECTOR,
                                                                     "#history tr")))
        assert "web-update" in drv.find_element(By.ID, "history").text
        assert text_of(drv, "presence") == "online", "dev-1 online on its page"
        shot(drv, "10-thing-history")

        # Groups and attributes edited on their pages.
        edit_groups_and_attributes(drv, fleet)

        # Firmware uploaded from the browser, signed with the key otter-web holds.
        drv.get(fleet.url + "/new-job.html")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, "input[value='bench']")))
        drv.find_element(By.ID, "firmware").send_keys(
            os.path.join(os.environ["OTTER_FW_DIR"], "otter-fw-1.2.0"))
        drv.find_element(By.ID, "version").send_keys("1.2.0")
        drv.find_element(By.ID, "securityCounter").send_keys("2")
        drv.find_element(By.CSS_SELECTOR, "input[value='bench']").click()
        drv.find_element(By.ID, "jobId").send_keys("web-signed")
        shot(drv, "10b-new-job-upload")
        drv.find_element(By.ID, "create").click()
        WebDriverWait(drv, 30).until(EC.url_contains("/job.html?id=web-signed"))
        WebDriverWait(drv, 20).until(lambda d: "1.2.0" in text_of(d, "summary") and
                                     statuses(d) == ["QUEUED"])
        shot(drv, "10c-job-signed-upload")
        stored = re.search(r"firmware:\s+(\S+) \(file id",
                           fleet.cli("job", "show", "web-signed").stdout).group(1)
        header = json.loads(fleet.cli("image", "show", "--json", stored).stdout)
        assert header["securityCounter"] == 2, "the form's counter in the header: %s" % header

        # Then firmware without a counter: devices that confirmed counter 2 will refuse it.
        # The job is made, and the page says so before going to it.
        drv.get(fleet.url + "/new-job.html")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, "input[value='bench']")))
        drv.find_element(By.ID, "firmware").send_keys(
            os.path.join(os.environ["OTTER_FW_DIR"], "otter-fw-1.2.0"))
        drv.find_element(By.ID, "version").send_keys("1.2.0")
        drv.find_element(By.CSS_SELECTOR, "input[value='bench']").click()
        drv.find_element(By.ID, "jobId").send_keys("web-rollback")
        drv.find_element(By.ID, "create").click()
        WebDriverWait(drv, 30).until(EC.visibility_of_element_located((By.ID, "created-job")))
        warning = text_of(drv, "warnings")
        assert "Job web-rollback was created" in warning and "OTA_ERR_ROLLBACK" in warning and \
            "job web-signed" in warning and "securityCounter 2 or higher" in warning, warning
        assert "/new-job.html" in drv.current_url, "the page stays to show the warning"
        assert not drv.find_element(By.ID, "create").is_enabled(), "no second create"
        shot(drv, "10f-new-job-rollback-warning")
        drv.find_element(By.ID, "created-job").click()
        WebDriverWait(drv, 20).until(EC.url_contains("/job.html?id=web-rollback"))

        drv.find_element(By.ID, "logout").click()
        WebDriverWait(drv, 20).until(EC.url_contains("/login.html"))
        drv.get(fleet.url + "/jobs.html")
        WebDriverWait(drv, 20).until(EC.url_contains("/login.html"))

        # A viewer: no way to create or cancel.
        login(drv, fleet, *VIEWER)
        assert not drv.find_elements(By.ID, "nav-new-job"), "no New job link for a viewer"
        drv.get(fleet.url + "/jobs.html")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located((By.CSS_SELECTOR,
                                                                     "#jobs tr")))
        assert not drv.find_elements(By.CSS_SELECTOR, "button[data-cancel]")
        shot(drv, "11-viewer-jobs")
        drv.get(fleet.url + "/groups.html")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, "section[data-group='sims']")))
        assert not drv.find_element(By.ID, "new-group").is_displayed(), "no group form"
        assert not drv.find_elements(By.CSS_SELECTOR, "#groups button"), "no group buttons"
        drv.get(fleet.url + "/thing.html?name=dev-2")
        WebDriverWait(drv, 20).until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, "#attributes tr[data-key='site']")))
        assert not drv.find_element(By.ID, "set-attribute").is_displayed(), "no attribute form"
        assert not drv.find_elements(By.CSS_SELECTOR, "#attributes button"), "no remove buttons"
        shot(drv, "12-viewer-thing")
    finally:
        drv.quit()


def main():
    root = os.environ.get("OTTER_TEST_TMP", "/tmp")
    with Fleet(root, devices=DEVICES, spare_things=("bench", "evil")) as fleet:
        profile = tempfile.mkdtemp(prefix="chromium-", dir=fleet.dir)
        # The console's code-signing key, where otter-web looks by default (docs/WEB.md).
        for name in ("codesign.key", "codesign.crt"):
            shutil.copy(os.path.join(fleet.dir, "keys", name), os.path.join(fleet.data, "web"))
        os.chmod(os.path.join(fleet.data, "web/codesign.key"), 0o600)
        try:
            fleet.image_job("1.1.0", "bench,evil", "seed")
            fleet.image_job("1.2.0", "bench", "seed-bad")
            plant_markup(fleet)
            run(fleet, profile)
        except BaseException:
            fleet.dump_logs()
            raise
        finally:
            shutil.rmtree(profile, ignore_errors=True)
    print("web_browser: login, fleet, job to SUCCEEDED on %d devices, cancel, abort, markup as "
          "text, logout, viewer: ok; screenshots in %s" % (len(DEVICES), SHOTS))


if __name__ == "__main__":
    main()
