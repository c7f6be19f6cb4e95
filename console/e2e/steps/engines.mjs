// The engines, models and settings pages (/console/engines, /models, /settings; admin).
// Called from console.e2e.mjs with the page of an admin session and
// ctx = { BASE_URL, API_KEY, check, shot, log }, after a job has been transcribed: the
// fleet's transcribe engine is alive (its heartbeat is fresh) and has done work, and the
// settings never show a secret the fleet was started with (DALSTON_API_KEY is the run's key).

const TRANSCRIBER = "faster-whisper";
const FRESH_S = 10; // src/lib/engines.ts FRESH_HEARTBEAT_S

export async function enginesStep(page, ctx) {
  const { BASE_URL, API_KEY, check, shot, log } = ctx;

  // --- engines ----------------------------------------------------------------------------
  await page.goto(`${BASE_URL}/console/`);
  await page.getByRole("navigation").getByRole("link", { name: "Engines" }).click();
  await page.waitForURL(/\/console\/engines$/);
  await page.getByRole("heading", { name: "Engines" }).waitFor();
  const row = page.locator(`tr[data-engine-id="${TRANSCRIBER}"]`);
  await row.waitFor();
  check(true, "an admin session has an Engines page listing the catalogue's engines");
  await page.waitForFunction(
    (id) => Number(document.querySelector(`tr[data-engine-id="${id}"]`)?.getAttribute("data-instances") ?? 0) >= 1,
    TRANSCRIBER,
    { timeout: 20_000, polling: 250 },
  );
  const instances = page.locator(`tr[data-instance-engine="${TRANSCRIBER}"]`);
  const ages = await instances.evaluateAll((rows) => rows.map((r) => Number(r.getAttribute("data-heartbeat-age"))));
  check(ages.length >= 1, `the ${TRANSCRIBER} engine shows ${ages.length} live instance(s)`);
  check(ages.some((a) => Number.isFinite(a) && a <= FRESH_S), `its heartbeat is fresh (${ages.map((a) => `${a} s`).join(", ")} old)`);
  const health = await row.getAttribute("data-health");
  check(health === "idle" || health === "busy", `the ${TRANSCRIBER} row says it is alive (${health})`);
  const done = Number(await row.getAttribute("data-done"));
  check(done >= 1, `the run's transcription counts in ${TRANSCRIBER}'s last 24 h (${done} done)`);
  const allEngines = await page.locator("tr[data-engine-id]").count();
  check(allEngines >= 5, `every catalogue engine has a row (${allEngines})`);
  await shot(page, "engines");

  // --- models -----------------------------------------------------------------------------
  await page.getByRole("navigation").getByRole("link", { name: "Models" }).click();
  await page.waitForURL(/\/console\/models$/);
  await page.getByRole("heading", { name: "Models" }).waitFor();
  const tiny = page.locator('tr[data-model-id="tiny.en"]');
  await tiny.waitFor();
  const tinyText = await tiny.innerText();
  check(/default/i.test(tinyText) && /English only/i.test(tinyText), "the models page lists tiny.en, the default, English only");
  check(/present/i.test(tinyText) && tinyText.includes(TRANSCRIBER), `tiny.en's weights are present and ${TRANSCRIBER} serves it`);
  check((await page.locator("tr[data-weights-engine]").count()) >= 1, "engines whose weights a setting names are listed");
  await shot(page, "models");

  // --- settings -----------------------------------------------------------------------------
  await page.getByRole("navigation").getByRole("link", { name: "Settings" }).click();
  await page.waitForURL(/\/console\/settings$/);
  await page.getByRole("heading", { name: "Settings" }).waitFor();
  const apiKeyRow = page.locator('tr[data-setting="api_key"]');
  await apiKeyRow.waitFor();
  check((await apiKeyRow.getAttribute("data-secret")) === "true", "DALSTON_API_KEY is treated as a secret");
  check(/set · hidden/i.test(await apiKeyRow.innerText()), "the API key setting shows only that it is set");
  const html = await page.content();
  check(!html.includes(API_KEY), "the run's API key (from the environment) appears nowhere on the settings page");
  const raw = await page.evaluate(async () => (await fetch("/v1/console/settings", { credentials: "same-origin" })).text());
  check(raw.length > 0 && !raw.includes(API_KEY), "nor in the settings API's answer");
  await shot(page, "settings");

  await page.getByLabel("Filter settings").fill("engine_claim");
  await page.locator('tr[data-setting="engine_claim_idle_ms"]').waitFor();
  check((await page.locator("tr[data-setting]").count()) === 1, "the filter narrows the settings to the one asked for");
  log("engines step done");
}
