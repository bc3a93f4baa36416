// Drive clients/web/index.html in a real headless Chromium (Debian's, through playwright-core): open the page,
// press Send, wait until it shows that the upload is done or failed, and print what it shows as one JSON line.
//
// Usage: node drive_web_page.mjs PAGE_URL CHROMIUM_PATH TIMEOUT_MS
// The browser is closed on every path; tests/e2e/test_web_client.py also stops this process (and so any
// browser left behind) by its pid.

import { chromium } from "playwright-core";

const [url, executablePath, timeoutText] = process.argv.slice(2);
const timeoutMs = Number(timeoutText);

// As root Chromium needs --no-sandbox (playwright-core adds it, as chromiumSandbox is off by default) and a new
// empty profile (launch() makes one in a temporary directory). Without the background-networking flags Chromium
// calls Google's services at start, which this machine's closed network refuses.
const browser = await chromium.launch({
  executablePath,
  headless: true,
  timeout: timeoutMs,
  args: ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(timeoutMs);
  const console_ = [];
  page.on("console", (message) => console_.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => console_.push(`pageerror: ${error.message}`));
  await page.goto(url);
  await page.click("#send");
  await page.waitForSelector('#status[data-state="done"], #status[data-state="failed"]');
  const shown = await page.evaluate(() => ({
    state: document.getElementById("status").dataset.state,
    status: document.getElementById("status").innerText,
    rows: [...document.querySelectorAll("#results tbody tr")].map((row) => {
      const [id, code, backendId, message] = [...row.cells].map((cell) => cell.innerText);
      return { id, code, backendId, message };
    }),
  }));
  process.stdout.write(JSON.stringify({ ...shown, console: console_ }) + "\n");
} finally {
  await browser.close();
}
