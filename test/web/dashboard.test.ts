/**
 * The dashboard in a real browser: Debian's Chromium driven by
 * playwright-core against a real pool on port 0. .ci/run installs
 * Chromium and sets AUTHPOOL_REQUIRE_BROWSER, so in CI a missing browser
 * fails the run instead of skipping it. Screenshots go to
 * test-results/dashboard-*.png.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SubscriptionState, createAuthPoolClient } from "../../src/client/index.js";
import { dashboardDir } from "../../src/server/dashboard.js";
import { type TestPool, startTestPool } from "../support/test-server.js";

const CHROMIUM = process.env.AUTHPOOL_CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = path.join(import.meta.dirname, "../../test-results");
const LIMIT_CAPTURE = path.join(import.meta.dirname, "../fixtures/claude-cli/stream-limit.ndjson");
const TOKENS = { reader: "reader-token-0123456789", admin: "admin-token-0123456789" };

const missing = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set AUTHPOOL_CHROMIUM)`
  : dashboardDir() === undefined
    ? "the dashboard is not built (npm run build)"
    : undefined;
if (missing !== undefined && process.env.AUTHPOOL_REQUIRE_BROWSER === "1") {
  throw new Error(`browser tests required: ${missing}`);
}
if (missing !== undefined) console.warn(`test/web/dashboard: skipped: ${missing}`);

let browser: Browser;
let pool: TestPool | undefined;
let dir: string;

beforeAll(async () => {
  if (missing !== undefined) return;
  dir = await mkdtemp(path.join(os.tmpdir(), "authpool-web-"));
  await mkdir(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});
afterAll(async () => {
  await browser?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

/** withTokens starts a pool that needs a reader or admin token. */
async function withTokens(): Promise<TestPool> {
  const file = path.join(dir, "tokens");
  await writeFile(file, `reader:${TOKENS.reader}\nadmin:${TOKENS.admin}\n`, { mode: 0o600 });
  return startTestPool({ config: { server: { host: "127.0.0.1", port: 0, authTokensFile: file } } });
}

/** open loads the dashboard in a fresh tab (its own sessionStorage), signing in with `token`. */
async function open(p: TestPool, token?: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("dialog", (d) => void d.accept());
  await page.goto(p.server.url);
  if (token !== undefined) {
    await page.locator("#token").fill(token);
    await page.locator("#login button").click();
  }
  await page.locator("#subscriptions tbody tr[data-subscription]").first().waitFor();
  return page;
}

const weeklyOf = (page: Page, id: string) =>
  page.locator(`tr[data-subscription="${id}"] td[data-label="Week"] .meter`).getAttribute("aria-valuenow");

describe.skipIf(missing !== undefined)("the dashboard in Chromium", () => {
  it("asks for a token, lists every subscription, updates live on a report, and draws the usage chart", async () => {
    pool = await withTokens();
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(pool.server.url);
    await page.locator("#login").waitFor();
    expect(await page.locator("#main").isHidden()).toBe(true);
    await page.locator("#token").fill("not-a-token-of-this-pool");
    await page.locator("#login button").click();
    await page.locator("#token-refused", { hasText: "not accepted" }).waitFor();
    expect(await page.evaluate<string | null>('sessionStorage.getItem("authpool.token")')).toBeNull();
    await page.locator("#token").fill(TOKENS.reader);
    await page.locator("#login button").click();
    const rows = page.locator("#subscriptions tbody tr[data-subscription]");
    await rows.first().waitFor();
    const ids = await Promise.all((await rows.all()).map((tr) => tr.getAttribute("data-subscription")));
    expect(ids).toEqual(["sub1", "sub2", "sub3"]);

    // A gateway's run: the stream tells the page, which shows the new weekly use.
    const admin = createAuthPoolClient(pool.server.url, { token: TOKENS.admin });
    const grant = await admin.allocate({ sessionId: "web-1" });
    const sub = grant.outcome.case === "subscription" ? grant.outcome.value.subscriptionId : "";
    await admin.reportUsage({ sessionId: "web-1", requestId: "r1", source: { case: "usage", value: { costUsd: 30 } } });
    await expect.poll(() => weeklyOf(page, sub), { timeout: 10_000 }).toBe("30");
    await page.locator("#events li", { hasText: "web-1" }).first().waitFor();

    // A run that hit its 5-hour limit, as the real CLI printed it: the row says why and when it ends.
    const limited = await admin.allocate({ sessionId: "web-2" });
    const limitedSub = limited.outcome.case === "subscription" ? limited.outcome.value.subscriptionId : "";
    await admin.reportUsage({
      sessionId: "web-2",
      source: { case: "claudeOutput", value: await readFile(LIMIT_CAPTURE, "utf8") },
    });
    await page.locator(`tr[data-subscription="${limitedSub}"] .badge`, { hasText: "cooldown" }).waitFor();
    expect(await page.locator(`tr[data-subscription="${limitedSub}"] td[data-label="Status"]`).textContent()).toMatch(
      /ends in \d+ (h|min)\b/,
    );

    // The chart: a canvas with the subscription's series in its legend.
    await page.locator("#group").selectOption("2");
    await page.locator("#chart canvas").waitFor();
    const box = await page.locator("#chart canvas").boundingBox();
    expect(box?.width).toBeGreaterThan(200);
    await page.locator("#chart .u-legend", { hasText: sub }).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-desktop.png"), fullPage: true });
    await context.close();
  });

  it("lets an admin pause a subscription after confirming, and refuses a reader, saying why", async () => {
    pool = await withTokens();
    const reader = await open(pool, TOKENS.reader);
    await reader.locator('tr[data-subscription="sub2"] button[data-action="pause"]').click();
    await reader.locator("#notice.refused").waitFor();
    expect(await reader.locator("#notice").textContent()).toMatch(/admin/);
    const status = () => createAuthPoolClient(pool!.server.url, { token: TOKENS.admin }).getPoolStatus({});
    expect((await status()).subscriptions.find((s) => s.id === "sub2")?.status).not.toBe(SubscriptionState.PAUSED);

    const admin = await open(pool, TOKENS.admin);
    await admin.locator('tr[data-subscription="sub2"] button[data-action="pause"]').click();
    await admin.locator("#notice.ok", { hasText: "Paused sub2." }).waitFor();
    expect((await status()).subscriptions.find((s) => s.id === "sub2")?.status).toBe(SubscriptionState.PAUSED);
    await admin.locator('tr[data-subscription="sub2"] .badge', { hasText: "paused" }).waitFor();
    // The reader's page follows the change live.
    await reader.locator('tr[data-subscription="sub2"] .badge', { hasText: "paused" }).waitFor();
    expect(await weeklyOf(admin, "sub2")).toBe("0");
  });

  it("stays usable at 50 subscriptions on a phone-sized screen: cards, no sideways scrolling", async () => {
    pool = await startTestPool({
      config: {
        subscriptions: Array.from({ length: 50 }, (_, i) => ({
          id: `acct-${String(i + 1).padStart(2, "0")}`,
          email: `owner${i + 1}@example.com`,
          type: "claude-max",
          configDir: path.join(dir, `acct-${i + 1}`),
          weeklyBudget: 100,
        })),
      },
    });
    const page = await open(pool, undefined, { width: 390, height: 844 });
    expect(await page.locator("#subscriptions tbody tr[data-subscription]").count()).toBe(50);
    // A string: it runs in the page, whose DOM types this Node project does not load.
    const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
    expect(overflow).toBeLessThanOrEqual(0);
    // Rows are cards: the header row is hidden and each cell carries its label.
    expect(await page.locator("#subscriptions thead").isHidden()).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-phone.png") });
  });
});
