// End-to-end check of the console in a real browser against a running Dalston fleet.
//
//   BASE_URL=http://127.0.0.1:8000 API_KEY=dk_… SCREENSHOT_DIR=bench/out/console-screenshots \
//     node console/e2e/console.e2e.mjs
//
// Optional: CHROMIUM (default /usr/bin/chromium), AUDIO_FILE (default tests/fixtures/speech_en.wav),
// JOB_TIMEOUT_S (default 120). Exits 0 when every check passes, 1 otherwise.

import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { sessionsStep } from "./steps/sessions.mjs";
import { liveChromiumArgs, liveStep } from "./steps/live.mjs";
import { jobStep } from "./steps/job.mjs";
import { enrichmentStep } from "./steps/enrichment.mjs";

import { keysStep } from "./steps/keys.mjs";
import { jobsStep } from "./steps/jobs.mjs";
import { auditStep } from "./steps/audit.mjs";
import { enginesStep } from "./steps/engines.mjs";
import { tenantsStep } from "./steps/tenants.mjs";
import { webhooksStep } from "./steps/webhooks.mjs";
import { a11yStep } from "./steps/a11y.mjs";
import { loginThrottleStep } from "./steps/loginThrottle.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const BASE_URL = (process.env.BASE_URL ?? "").replace(/\/+$/, "");
const API_KEY = process.env.API_KEY ?? "";
const SCREENSHOT_DIR = path.resolve(process.env.SCREENSHOT_DIR ?? path.join(ROOT, "bench", "out", "console-screenshots"));
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const AUDIO_FILE = path.resolve(ROOT, process.env.AUDIO_FILE ?? "tests/fixtures/speech_en.wav");
const JOB_TIMEOUT_MS = Number(process.env.JOB_TIMEOUT_S ?? 120) * 1000;
// Every page has its step now (live audio, a re-run job, the accessibility scan): minutes, not seconds.
const OVERALL_TIMEOUT_MS = JOB_TIMEOUT_MS + 720_000;

if (!BASE_URL || !API_KEY) {
  console.error("BASE_URL and API_KEY must be set");
  process.exit(2);
}

const started = Date.now();
function log(message) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`);
}

class CheckFailed extends Error {}
function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
  log(`ok: ${message}`);
}

// Browser console errors and uncaught page errors fail the run, except the 401s a logged-out
// browser is expected to get (GET /v1/console/session before login, a wrong key's POST).
const problems = [];
let currentPage = null;
let browser = null;
// Statuses the browser logs as "Failed to load resource" that the current step expects.
let expectedStatuses = new Set([401]);
const FAILED_RESOURCE = /Failed to load resource: the server responded with a status of (\d{3})/;

function watch(page) {
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const text = msg.text();
    const failed = FAILED_RESOURCE.exec(text);
    if (failed && expectedStatuses.has(Number(failed[1]))) return;
    problems.push(`console error on ${page.url()}: ${text}`);
  });
  page.on("pageerror", (err) => problems.push(`uncaught page error on ${page.url()}: ${err.message}`));
  page.on("response", (response) => {
    const status = response.status();
    if (status >= 500) problems.push(`HTTP ${status} from ${response.request().method()} ${response.url()}`);
  });
}

async function shot(page, name, { settle = true } = {}) {
  // Let polling, charts and fonts settle so the picture shows the page, not its loader.
  if (settle) {
    await page.waitForLoadState("networkidle", { timeout: 10_000 }).catch(() => {});
    await page.waitForTimeout(300);
  }
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${path.relative(ROOT, file)}`);
}

async function noProblems(where) {
  check(problems.length === 0, `no console or page errors ${where}${problems.length ? `:\n  ${problems.join("\n  ")}` : ""}`);
}

async function main() {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The fake microphone (live step) plays a speech fixture once when the page opens it.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", ...liveChromiumArgs(ROOT)],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true, colorScheme: "light" });
    const page = await context.newPage();
    currentPage = page;
    page.setDefaultTimeout(20_000);
    watch(page);

    // --- login ------------------------------------------------------------------------
    await page.goto(`${BASE_URL}/console/`);
    await page.waitForURL(/\/console\/login$/);
    check(true, "an unauthenticated visit to /console/ lands on /console/login");
    const keyField = page.getByLabel("API key");
    check((await keyField.getAttribute("type")) === "password", "the API key field is a password field");
    await shot(page, "01-login");

    await keyField.fill("dk_not_a_real_key");
    await page.getByRole("button", { name: "Sign in" }).click();
    const loginError = page.getByTestId("login-error");
    await loginError.waitFor();
    check(/not accepted/.test(await loginError.innerText()), "a wrong key is refused inline, in plain words");
    await shot(page, "02-login-error");

    await keyField.fill(API_KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/console\/?$/);
    await page.getByRole("heading", { name: "Dashboard" }).waitFor();
    await page.getByTestId("stat-completed").waitFor();
    check(true, "logging in goes to the dashboard, which renders its numbers");
    expectedStatuses = new Set();

    const stored = await page.evaluate(() => ({
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
      cookie: document.cookie,
    }));
    check(!stored.local.includes(API_KEY) && !stored.session.includes(API_KEY), "the API key is not in localStorage or sessionStorage");
    check(!stored.cookie.includes("dalston_session") && !stored.cookie.includes(API_KEY), "the session cookie is not readable by scripts (HttpOnly)");
    await shot(page, "03-dashboard-before");

    // --- new transcription ----------------------------------------------------------------
    await page.getByRole("navigation").getByRole("link", { name: "New transcription" }).click();
    await page.waitForURL(/\/console\/new$/);
    await page.getByRole("heading", { name: "New transcription" }).waitFor();
    // Bytes that are not audio: the gateway's refusal is shown inline.
    expectedStatuses = new Set([400]);
    await page.locator('input[type="file"]').setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("this is not audio\n".repeat(64)) });
    await page.getByRole("button", { name: "Transcribe" }).click();
    const submitError = page.getByTestId("submit-error");
    await submitError.waitFor();
    const refusal = await submitError.innerText();
    check(/audio/i.test(refusal), `a file that is not audio is refused inline: "${refusal.trim()}"`);
    await shot(page, "04-new-refused");
    expectedStatuses = new Set();

    await page.locator('input[type="file"]').setInputFiles(AUDIO_FILE);
    await page.getByTestId("chosen-file").waitFor();
    check((await page.getByTestId("chosen-file").innerText()) === path.basename(AUDIO_FILE), "the chosen file is shown");
    await shot(page, "05-new");
    await page.getByRole("button", { name: "Transcribe" }).click();
    await page.waitForURL(/\/console\/jobs\/[0-9a-f-]{36}$/, { timeout: 60_000 });
    const jobId = page.url().split("/").pop();
    check(true, `the upload created job ${jobId} and opened its page`);
    await page.getByTestId("job-title").waitFor();
    await shot(page, "06-job-just-submitted", { settle: false });

    // --- the job ----------------------------------------------------------------------------
    const status = page.getByTestId("job-status");
    await page.waitForFunction(
      () => ["completed", "failed", "cancelled"].includes(document.querySelector('[data-testid="job-status"]')?.getAttribute("data-status") ?? ""),
      undefined,
      { timeout: JOB_TIMEOUT_MS, polling: 500 },
    );
    const finalStatus = await status.getAttribute("data-status");
    check(finalStatus === "completed", `the job page shows the job completed (it says ${finalStatus})`);

    const words = page.locator("[data-testid=transcript] .word[data-start]");
    await words.first().waitFor();
    const count = await words.count();
    check(count >= 10, `the transcript shows ${count} clickable words`);
    await page.waitForFunction(() => (document.querySelector("audio")?.readyState ?? 0) >= 1, undefined, { timeout: 15_000 });
    check(true, "the audio player loaded the job's audio (/audio)");
    const duration = await page.evaluate(() => document.querySelector("audio").duration);
    check(Number.isFinite(duration) && duration > 5, `the player knows the audio's duration (${duration?.toFixed?.(2)} s)`);

    const middle = words.nth(Math.floor(count / 2));
    const start = Number(await middle.getAttribute("data-start"));
    const wordText = await middle.innerText();
    await middle.scrollIntoViewIfNeeded();
    await middle.click();
    let currentTime = NaN;
    for (let i = 0; i < 20; i++) {
      currentTime = await page.evaluate(() => document.querySelector("audio").currentTime);
      if (Math.abs(currentTime - start) <= 0.3) break;
      await page.waitForTimeout(100);
    }
    check(Math.abs(currentTime - start) <= 0.3, `clicking "${wordText}" (data-start ${start}) seeks the player to ${currentTime.toFixed(3)} s`);
    await page.waitForFunction((el) => el.classList.contains("playing"), await middle.elementHandle(), { timeout: 5000 });
    check(true, `the word at the playback position ("${wordText}") is highlighted`);

    // Playing moves the highlight along with the audio.
    await page.evaluate(() => document.querySelector("audio").play());
    await page.waitForFunction((t) => document.querySelector("audio").currentTime > t + 0.8, start, { timeout: 10_000 });
    const lit = await page.evaluate(() => {
      const audio = document.querySelector("audio");
      audio.pause();
      const el = document.querySelector("[data-testid=transcript] .word.playing");
      return { time: audio.currentTime, start: el ? Number(el.getAttribute("data-start")) : null, count: document.querySelectorAll(".word.playing").length };
    });
    check(
      lit.count === 1 && lit.start !== null && lit.start > start && lit.start <= lit.time + 0.01,
      `while playing, the highlight follows the audio (at ${lit.time.toFixed(2)} s the lit word starts at ${lit.start})`,
    );

    const [download] = await Promise.all([page.waitForEvent("download"), page.locator("[data-export=srt]").click()]);
    const srtPath = await download.path();
    const srt = srtPath ? await readFile(srtPath, "utf8") : "";
    check(srt.includes("-->"), `the srt export downloads (${download.suggestedFilename()}, ${srt.length} bytes) and has cues`);
    await jobStep(page, { BASE_URL, ROOT, API_KEY, jobId, JOB_TIMEOUT_MS, check, shot, log });
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, "07-job");

    // --- PII detection and redaction: the form's options and the job page's results ------
    await enrichmentStep(page, { BASE_URL, ROOT, API_KEY, JOB_TIMEOUT_MS, check, shot, log });

    // --- every page -------------------------------------------------------------------------
    await page.goto(`${BASE_URL}/console/jobs`);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    const row = page.locator(`tr[data-job-id="${jobId}"]`);
    await row.waitFor();
    check(/completed/i.test(await row.innerText()), "the jobs table lists the job as completed");
    await shot(page, "08-jobs");

    await page.goto(`${BASE_URL}/console/jobs?status=failed`);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.waitForLoadState("networkidle").catch(() => {});
    check((await page.locator(`tr[data-job-id="${jobId}"]`).count()) === 0, "filtering by status=failed hides the completed job");
    await shot(page, "09-jobs-failed-filter");

    await page.goto(`${BASE_URL}/console/jobs`);
    await page.locator(`tr[data-job-id="${jobId}"]`).click();
    await page.waitForURL(new RegExp(`/console/jobs/${jobId}$`));
    await page.getByTestId("job-title").waitFor();
    check(true, "a row click opens the job");

    await page.goto(`${BASE_URL}/console/`);
    await page.getByTestId("stat-completed").waitFor();
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="stat-completed"]')?.textContent) >= 1, undefined, { timeout: 15_000 });
    check(true, "the dashboard counts the completed job");
    await shot(page, "10-dashboard");

    await page.goto(`${BASE_URL}/console/new`);
    await page.getByRole("heading", { name: "New transcription" }).waitFor();
    await shot(page, "11-new-empty");

    await page.goto(`${BASE_URL}/console/no-such-page`);
    await page.getByRole("heading", { name: "Page not found" }).waitFor();
    await shot(page, "12-not-found");

    // Dark mode follows the system.
    await page.emulateMedia({ colorScheme: "dark" });
    await page.goto(`${BASE_URL}/console/`);
    await page.getByTestId("stat-completed").waitFor();
    check((await page.evaluate(() => document.documentElement.getAttribute("data-mantine-color-scheme"))) === "dark", "the console follows a dark system theme");
    await shot(page, "13-dashboard-dark");
    await page.goto(`${BASE_URL}/console/jobs/${jobId}`);
    await words.first().waitFor();
    await shot(page, "14-job-dark");
    await page.emulateMedia({ colorScheme: "light" });

    // A key without jobs:write sees the job but cannot cancel, delete or submit.
    const created = await fetch(`${BASE_URL}/v1/keys`, {
      method: "POST",
      headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "console e2e read-only", scopes: ["jobs:read"], expires_in_seconds: 600 }),
    });
    check(created.status === 201, `a read-only key is created for the check (HTTP ${created.status})`);
    const readOnly = await created.json();
    try {
      const roContext = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const ro = await roContext.newPage();
      watch(ro);
      expectedStatuses = new Set([401]);
      await ro.goto(`${BASE_URL}/console/login`);
      await ro.getByLabel("API key").fill(readOnly.key);
      await ro.getByRole("button", { name: "Sign in" }).click();
      await ro.waitForURL(/\/console\/?$/);
      expectedStatuses = new Set();
      await ro.goto(`${BASE_URL}/console/jobs/${jobId}`);
      await ro.getByTestId("job-title").waitFor();
      check(await ro.getByRole("button", { name: "Delete" }).isDisabled(), "a read-only key's Delete button is disabled");
      await ro.goto(`${BASE_URL}/console/new`);
      await ro.getByText("lacks the jobs:write scope").waitFor();
      check(await ro.getByRole("button", { name: "Transcribe" }).isDisabled(), "a read-only key cannot submit from the New page");
      await shot(ro, "16-new-read-only");
      await roContext.close();
    } finally {
      await fetch(`${BASE_URL}/v1/keys/${readOnly.id}`, { method: "DELETE", headers: { Authorization: `Bearer ${API_KEY}` } });
    }

    // Delete (a DELETE with the CSRF header), after a confirmation.
    await page.goto(`${BASE_URL}/console/jobs/${jobId}`);
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByTestId("confirm-action").waitFor();
    await page.waitForTimeout(500); // the modal's fade-in
    await shot(page, "15-delete-confirm", { settle: false });
    await page.getByTestId("confirm-action").click();
    await page.waitForURL(/\/console\/jobs$/);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.waitForLoadState("networkidle").catch(() => {});
    check((await page.locator(`tr[data-job-id="${jobId}"]`).count()) === 0, "deleting the job (confirmed) removes it from the jobs table");

    // --- jobs list: filters and bulk cancel / delete --------------------------------------
    await jobsStep(page, { BASE_URL, API_KEY, ROOT, check, shot, log, expectStatuses: (s) => (expectedStatuses = new Set(s)) });

    // --- API keys (admin) ---------------------------------------------------------------
    await keysStep(page, { BASE_URL, check, shot, log });

    // --- realtime sessions --------------------------------------------------------------
    await sessionsStep(page, { BASE_URL, ROOT, check, shot, log });

    // --- live transcription: the fake microphone through the page's WebSocket ---------
    await liveStep(page, { BASE_URL, ROOT, check, shot, log });

    // --- webhooks ------------------------------------------------------------------------
    await webhooksStep(page, { BASE_URL, API_KEY, AUDIO_FILE, check, shot, log });

    // --- engines, models, settings (admin) ----------------------------------------------
    await enginesStep(page, { BASE_URL, API_KEY, check, shot, log });

    // --- tenants (admin): act for another tenant and back --------------------------------
    await tenantsStep(page, { BASE_URL, API_KEY, ROOT, check, shot, log });

    // --- audit log (admin): the events of the steps above -------------------------------
    await auditStep(page, { BASE_URL, check, shot, log });

    // --- accessibility: axe-core on every page, logged out and in, light and dark ---------
    await a11yStep(page, { BASE_URL, API_KEY, AUDIO_FILE, browser, check, log });

    await noProblems("while using the console");

    // --- logout -------------------------------------------------------------------------------
    expectedStatuses = new Set([401]);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL(/\/console\/login$/);
    await page.goto(`${BASE_URL}/console/jobs`);
    await page.waitForURL(/\/console\/login$/);
    check(true, "after logging out, console pages lead back to the login page");

    // --- the login throttle: LAST, since this address cannot log in for a while after it --
    expectedStatuses = new Set([401, 429]);
    await loginThrottleStep(page, { check, shot, log });

    await noProblems("in the whole run");
    await context.close();
  } catch (err) {
    if (currentPage) {
      const file = path.join(SCREENSHOT_DIR, "failure.png");
      await currentPage.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error(`failure screenshot: ${file} (page ${currentPage.url()})`);
    }
    throw err;
  } finally {
    await browser.close();
  }
}

const timer = setTimeout(() => {
  console.error(`FAILED: the run took longer than ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

main()
  .then(() => {
    clearTimeout(timer);
    log("PASSED");
    process.exit(0);
  })
  .catch(async (err) => {
    clearTimeout(timer);
    console.error(`FAILED: ${err instanceof CheckFailed ? err.message : err?.stack ?? err}`);
    if (problems.length) console.error(`browser problems:\n  ${problems.join("\n  ")}`);
    process.exit(1);
  });
