"""The demo, seen through a real headless Chromium: the local Hub's pages and the Spaces' running apps.

``python -m beam_pusher demo --wait`` runs as a user runs it (``make demo`` on a terminal): it deploys the three
demo Spaces to a local Hub that runs them, prints their page and app URLs, and serves until Ctrl-C. Debian's
``chromium`` and ``chromedriver`` (``make browser`` installs them) open the index and the Spaces' pages, upload an
image to the image classifier and type a review into the text classifier inside the pages' app frames, and read
the predictions; a screenshot of each page is saved in the test's tmp folder. Then Ctrl-C stops the demo, and
none of its apps answers any more.
"""

from __future__ import annotations

import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"
READY = "Serving until Ctrl-C"
DEMO_TIMEOUT = 2400  # seconds: a cold machine makes the models and the Spaces' environment first
PREDICTION_TIMEOUT = 180  # seconds: the first prediction loads TensorFlow and the model
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1500")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

pytestmark = pytest.mark.timeout(DEMO_TIMEOUT + 600)


class Demo:
    """The demo process, what it printed, and the URLs it printed."""

    def __init__(self, process: subprocess.Popen, output: list[str]):
        self.process = process
        self.output = output
        text = "\n".join(output)
        self.endpoint = re.search(r"Local Hub: (http://\S+?)/?$", text, re.MULTILINE).group(1)
        self.pages = dict(re.findall(r"^\s+(\S+/\S+)\s+RUNNING\s+page (http://\S+)$", text, re.MULTILINE))
        self.apps = re.findall(r"^\s+app  (http://\S+)$", text, re.MULTILINE)


def _start_demo() -> Demo:
    process = subprocess.Popen([sys.executable, "-m", "beam_pusher", "demo", "--wait"], cwd=ROOT, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    output: list[str] = []
    deadline = time.monotonic() + DEMO_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=5)
        except queue.Empty:
            continue
        if line is None:
            break
        output.append(line)
        if READY in line:
            demo = Demo(process, output)
            keep = threading.Thread(target=lambda: [output.append(rest) for rest in iter(lines.get, None)], daemon=True)
            keep.start()
            return demo
    process.kill()
    pytest.fail("the demo did not start serving:\n" + "\n".join(output[-60:]), pytrace=False)


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    running = _start_demo()
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGINT)
            try:
                running.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                running.process.kill()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "Debian's chromium and chromium-driver are needed: run 'make browser'"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_page_load_timeout(60)
    try:
        yield session
    finally:
        session.quit()


def _labels(model: str) -> list[str]:
    return (MODELS / model / "labels.txt").read_text(encoding="utf-8").split()


def _open_space(browser, demo: Demo, repo_id: str, screenshot: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(demo.pages[repo_id])
    assert browser.find_element(By.ID, "stage").text == "RUNNING"
    assert browser.find_element(By.ID, "head").text  # the last commit
    assert "Build log" in browser.page_source and "Application Startup" in browser.page_source
    browser.save_screenshot(str(screenshot))
    browser.switch_to.frame(browser.find_element(By.ID, "app-frame"))


def _predict(browser, fill) -> str:
    """Fills the Gradio app's input with ``fill``, presses Submit, and returns the predicted label it shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, PREDICTION_TIMEOUT)
    fill(wait)
    submit = wait.until(lambda b: [e for e in b.find_elements(By.TAG_NAME, "button") if e.text == "Submit"])
    submit[0].click()
    shown = wait.until(lambda b: [e.text for e in b.find_elements(By.CSS_SELECTOR, "[data-testid=label-output-value]")
                                  if e.text.strip()])
    return shown[0].strip()


def test_the_index_lists_the_running_demo_spaces_and_the_model(demo, browser, tmp_path):
    from selenium.webdriver.common.by import By

    assert set(demo.pages) == {"user/penguin-gradio", "user/penguin-streamlit", "user/review-sentiment"}, demo.output
    browser.get(demo.endpoint + "/")
    rows = {row.find_element(By.TAG_NAME, "a").text: row.text for row in
            browser.find_elements(By.CSS_SELECTOR, "#spaces tr") if row.find_elements(By.TAG_NAME, "a")}
    assert set(rows) == set(demo.pages)
    assert all("RUNNING" in text and "cpu-basic" in text and "public" in text for text in rows.values()), rows
    assert "user/tiny-text-classifier" in browser.find_element(By.ID, "models").text
    browser.save_screenshot(str(tmp_path / "index.png"))
    assert (tmp_path / "index.png").stat().st_size > 10_000


def test_the_gradio_image_classifier_predicts_an_uploaded_image(demo, browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    image = tmp_path / "penguin.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(image)
    _open_space(browser, demo, "user/penguin-gradio", tmp_path / "space-penguin-gradio.png")

    def upload(wait) -> None:
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0].send_keys(str(image))
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "img"))  # the upload is shown before it is sent

    label = _predict(browser, upload)
    assert label in _labels("tiny_classifier")
    browser.switch_to.default_content()
    browser.save_screenshot(str(tmp_path / "space-penguin-gradio-predicted.png"))


def test_the_gradio_text_classifier_predicts_a_typed_review(demo, browser, tmp_path):
    from selenium.webdriver.common.by import By

    _open_space(browser, demo, "user/review-sentiment", tmp_path / "space-review-sentiment.png")
    label = _predict(browser, lambda wait: wait.until(
        lambda b: b.find_elements(By.TAG_NAME, "textarea"))[0].send_keys("What a wonderful day!"))
    assert label in _labels("tiny_text_classifier")
    browser.switch_to.default_content()
    browser.save_screenshot(str(tmp_path / "space-review-sentiment-predicted.png"))


def test_the_streamlit_space_page_embeds_its_running_app(demo, browser, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    _open_space(browser, demo, "user/penguin-streamlit", tmp_path / "space-penguin-streamlit.png")
    WebDriverWait(browser, PREDICTION_TIMEOUT).until(lambda b: "Image classifier" in b.page_source)


def test_ctrl_c_stops_the_demo_and_every_app(demo):
    assert len(demo.apps) == 3 and all(_answers(url) for url in demo.apps)
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=120) == 0, "\n".join(demo.output[-40:])
    time.sleep(0.5)
    assert "the local Hub and its apps are stopped" in "\n".join(demo.output)
    assert not any(_answers(url) for url in demo.apps)


def _answers(url: str) -> bool:
    try:
        with _NO_PROXY.open(url, timeout=10):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
