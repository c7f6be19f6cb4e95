// The accessibility scan: axe-core on every console page, logged out (login) and logged in,
// in the light and the dark colour scheme. Any violation of impact "serious" or "critical"
// fails the run, printed with its rule, impact, target selectors and help URL.
// Called from console.e2e.mjs with the page of an admin session and
// ctx = { BASE_URL, API_KEY, AUDIO_FILE, browser, check, log } (the main script's helpers).

import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const AXE = path.resolve(HERE, "..", "..", "node_modules", "axe-core", "axe.min.js");
const BLOCKING = new Set(["serious", "critical"]);
const SCHEMES = ["light", "dark"];
const JOB_WAIT_MS = 120_000;

/** GET/POST to the gateway with the admin key (not the browser's session). */
async function gateway(ctx, method, url, body) {
  const response = await fetch(`${ctx.BASE_URL}${url}`, { method, headers: { Authorization: `Bearer ${ctx.API_KEY}` }, body });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

/** A job to show on the job page: a fresh upload of the test audio, finished if the fleet is quick. */
async function makeJob(ctx) {
  const form = new FormData();
  form.append("file", new Blob([await readFile(ctx.AUDIO_FILE)], { type: "audio/wav" }), path.basename(ctx.AUDIO_FILE));
  const created = await gateway(ctx, "POST", "/v1/audio/transcriptions", form);
  if (created.status >= 300) throw new Error(`creating a job for the scan failed: HTTP ${created.status} ${JSON.stringify(created.json)}`);
  const id = created.json.id;
  const deadline = Date.now() + JOB_WAIT_MS;
  while (Date.now() < deadline) {
    const job = await gateway(ctx, "GET", `/v1/audio/transcriptions/${id}`);
    if (["completed", "failed", "cancelled"].includes(job.json?.status)) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return id;
}

/** Wait for the page to show its content, not its loader, and for transitions to end. */
async function settle(page) {
  await page.waitForLoadState("networkidle", { timeout: 10_000 }).catch(() => {});
  await page
    .waitForFunction(() => !document.querySelector(".mantine-Loader-root, [data-testid=page-loader]"), undefined, { timeout: 10_000 })
    .catch(() => {});
  await page.waitForTimeout(400);
}

/** axe-core's serious and critical violations on the page as it is now. */
async function scan(page) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      targets: v.nodes.map((n) => ({ target: n.target.join(" "), summary: (n.failureSummary ?? "").split("\n").slice(1, 2).join(" ").trim() })),
    }));
  });
  return violations.filter((v) => BLOCKING.has(v.impact));
}

function describe(where, violations) {
  return violations
    .map((v) => {
      const nodes = v.targets.slice(0, 6).map((t) => `      ${t.target}${t.summary ? ` (${t.summary})` : ""}`);
      const more = v.targets.length > 6 ? [`      … and ${v.targets.length - 6} more`] : [];
      return [`  ${where}: ${v.id} [${v.impact}] ${v.help}`, `    ${v.helpUrl}`, ...nodes, ...more].join("\n");
    })
    .join("\n");
}

export async function a11yStep(page, ctx) {
  const { BASE_URL, browser, check, log } = ctx;
  const jobId = await makeJob(ctx);
  const sessions = await gateway(ctx, "GET", "/v1/realtime/sessions?limit=1");
  const sessionId = sessions.json?.sessions?.[0]?.id ?? null;

  const routes = [
    ["dashboard", "/console/"],
    ["jobs", "/console/jobs"],
    ["job", `/console/jobs/${jobId}`],
    ["new", "/console/new"],
    ["sessions", "/console/sessions"],
    ...(sessionId ? [["session", `/console/sessions/${sessionId}`]] : []),
    ["live", "/console/live"],
    ["keys", "/console/keys"],
    ["webhooks", "/console/webhooks"],
    ["audit", "/console/audit"],
    ["engines", "/console/engines"],
    ["models", "/console/models"],
    ["settings", "/console/settings"],
    ["not-found", "/console/no-such-page"],
  ];
  if (!sessionId) log("a11y: no realtime session exists, so no session page is scanned");

  const failures = [];
  let scanned = 0;
  for (const scheme of SCHEMES) {
    // Logged out: a context of its own, without the session cookie.
    const outside = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: scheme });
    try {
      const login = await outside.newPage();
      await login.goto(`${BASE_URL}/console/login`);
      await login.getByLabel("API key").waitFor();
      await settle(login);
      const found = await scan(login);
      scanned += 1;
      if (found.length) failures.push(describe(`login (${scheme})`, found));
    } finally {
      await outside.close();
    }

    await page.emulateMedia({ colorScheme: scheme });
    for (const [name, url] of routes) {
      await page.goto(`${BASE_URL}${url}`);
      // A page that renders no heading is still scanned (axe reports what it lacks).
      await page.locator("main h1, main h2, main h3, main h4").first().waitFor({ timeout: 20_000 }).catch(() => log(`a11y: ${url} shows no heading`));
      await settle(page);
      const found = await scan(page);
      scanned += 1;
      if (found.length) failures.push(describe(`${name} ${url} (${scheme})`, found));
      else log(`a11y: ${name} (${scheme}) has no serious or critical violation`);
    }
  }
  await page.emulateMedia({ colorScheme: "light" });
  await gateway(ctx, "DELETE", `/v1/audio/transcriptions/${jobId}`).catch(() => {});

  if (failures.length) console.error(`accessibility violations (serious or critical):\n${failures.join("\n")}`);
  check(failures.length === 0, `axe-core finds no serious or critical violation on ${scanned} page views (every route, logged out and in, light and dark)`);
}
