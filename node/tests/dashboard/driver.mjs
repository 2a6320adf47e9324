// Drives the live dashboard of a running node in a Chromium the test started (connected over
// the DevTools protocol), and prints one JSON line with what it saw. Run by
// node/tests/dashboard.rs:
//
//   node driver.mjs <devtools http endpoint> <dashboard url> <screenshot path> <links wait secs>
//
// Every wait polls against a deadline; any failure prints {"error": ...} and exits 1.
import { chromium } from "playwright-core";

const [endpoint, url, screenshot, linksWait] = process.argv.slice(2);
const STEP_MS = 90_000;

const result = { console_errors: [], page_errors: [], steps: [] };
const step = (name) => result.steps.push(name);

async function poll(what, fn, limitMs = STEP_MS) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await fn();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let browser;
try {
  browser = await chromium.connectOverCDP(endpoint, { timeout: STEP_MS });
  const context = browser.contexts()[0] ?? (await browser.newContext());
  const page = await context.newPage();
  await page.setViewportSize({ width: 1600, height: 1000 });
  page.on("console", (m) => {
    if (m.type() === "error") result.console_errors.push(m.text());
  });
  page.on("pageerror", (e) => result.page_errors.push(String(e)));

  const response = await page.goto(url, { waitUntil: "load", timeout: STEP_MS });
  result.status = response ? response.status() : null;
  result.title = await page.title();
  step("loaded");

  await poll("the stream to go live", () => page.$("#status.live"));
  step("live");

  const total = async () => Number((await page.textContent("#kpi-total")).replace(/[^0-9]/g, ""));
  const first = await poll("a first decision count", async () => ((await total()) > 0 ? total() : null));
  const later = await poll("the decision count to change", async () => {
    const now = await total();
    return now !== first ? now : null;
  });
  result.totals = [first, later];
  result.eps = await page.textContent("#kpi-eps");
  step("counting");

  const row = await poll("a flagged or declined transaction in the feed", () => page.$("#feed tbody tr[data-txn]"));
  result.txn = await row.getAttribute("data-txn");
  result.row_outcome = await row.getAttribute("data-outcome");
  result.row_rules = await row.$$eval("td.rules .chip", (chips) => chips.map((c) => c.textContent));
  step("feed row");

  await row.click();
  await poll("the detail panel to open", () => page.$("#detail.open"));
  await poll("the decision's reasons", () => page.$("#detail .reason-name, #detail .empty:not(:first-child)"));
  result.detail_title = await page.textContent("#detail-title");
  result.detail_outcome = await page.textContent("#detail-outcome");
  result.detail_rules = await page.$$eval("#detail .reason:not(.shadow) .reason-name", (els) => els.map((e) => e.textContent));
  result.detail_values = await page.$$eval("#detail .reason:not(.shadow) table tr", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  // The "More" links: each shows the API's answer (fetched with the page's token), not a 401.
  result.json_views = [];
  for (const link of await page.$$("#detail .more button.link")) {
    const name = await link.textContent();
    const path = await link.getAttribute("data-path");
    await link.click();
    const state = await poll(`${name} to load`, () => page.$eval("#json-view", (v, p) =>
      v.dataset.path === p && v.dataset.state !== "loading" && !v.hidden ? v.dataset.state : null, path));
    const text = await page.textContent("#json-view pre");
    let json = null;
    try { json = JSON.parse(text); } catch (_) { /* reported as text */ }
    result.json_views.push({ name, path, state, json, text: json === null ? text : undefined });
  }
  await page.waitForTimeout(300); // the drawer's slide-in
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-detail.png") });
  step("detail");
  await page.keyboard.press("Escape");
  await poll("the detail panel to close", async () => !(await page.$("#detail.open")));

  // Give the charts a few points and, when asked, the linked-users view a chance to show a
  // ring (reported, not required here: the test decides what to require).
  const waitLinks = Number(linksWait || 0) * 1000;
  // A pair shows both users: the first one, approved when it was alone on the device, too.
  result.links = await poll("linked users", async () => {
    const n = await page.$$eval("#links .ring", (els) => els.length);
    const approved = await page.$("#links .ring .users button.approve");
    return n > 0 && approved ? n : null;
  }, waitLinks).catch(() => 0);
  result.link_groups = await page.$$eval("#links .ring", (els) => els.map((e) => ({
    key: e.getAttribute("data-key"),
    users: [...e.querySelectorAll(".users button")].map((b) => b.textContent),
    outcomes: [...e.querySelectorAll(".users button")].map((b) => b.className),
  })));
  result.rule_rows = await page.$$eval("#rules tbody tr", (rows) => rows.map((r) => [...r.cells].slice(0, 3).map((c) => c.textContent)));
  result.chart_points = await page.evaluate(() => document.querySelectorAll("canvas").length);
  await page.screenshot({ path: screenshot, fullPage: false });
  step("screenshot");
  await page.close();
  console.log(JSON.stringify(result));
  await browser.close();
  process.exit(0);
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
  console.log(JSON.stringify(result));
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
