// PII detection and redaction in the console: the new-job form's enrichment options, and a
// job page with entities (panel, highlighted words, click plays), the redacted text and the
// redacted audio. Called from console.e2e.mjs with
// ctx = { BASE_URL, ROOT, API_KEY, JOB_TIMEOUT_MS, check, shot, log }.

import path from "node:path";

const CALL = "tests/fixtures/pii_call_en.wav";

export async function enrichmentStep(page, ctx) {
  const { BASE_URL, ROOT, API_KEY, JOB_TIMEOUT_MS, check, shot, log } = ctx;

  // --- the form -------------------------------------------------------------------------
  await page.goto(`${BASE_URL}/console/new`);
  await page.getByRole("heading", { name: "New transcription" }).waitFor();
  const options = page.getByTestId("enrichment-options");
  await options.waitFor();
  await page.getByTestId("llm-availability").waitFor();
  const llm = await page.getByTestId("llm-availability").innerText();
  const cleanup = page.getByLabel("Remove fillers and false starts");
  if (/not available/i.test(llm)) {
    check(await cleanup.isDisabled(), `LLM cleanup is disabled with the reason shown ("${llm.trim()}")`);
  }
  for (const [testId, label] of [
    ["emotions-availability", "Emotion per segment"],
    ["events-availability", "Audio events"],
  ]) {
    const line = (await page.getByTestId(testId).innerText()).trim();
    if (/not available/i.test(line)) check(await page.getByLabel(label).isDisabled(), `"${label}" is disabled with the reason shown ("${line}")`);
  }
  await page.getByLabel("Detect PII").check({ force: true });
  const types = page.getByRole("textbox", { name: "Entity types" });
  check(await types.isEnabled(), "detecting PII enables the entity type picker");
  await types.click();
  await page.getByRole("option", { name: "Person name" }).click();
  await page.getByRole("option", { name: "Credit card" }).click();
  await page.getByRole("option", { name: "Phone number" }).click();
  await page.getByRole("option", { name: "Email address" }).click();
  await page.keyboard.press("Escape");
  await page.getByRole("textbox", { name: "Redact the text" }).click();
  await page.getByRole("option", { name: /PERSON_NAME_1/ }).click();
  await page.getByLabel("Redact the audio").check({ force: true });
  await options.getByText("Beep", { exact: true }).click();
  await page.locator('input[type="file"]').setInputFiles(path.join(ROOT, CALL));
  await page.getByTestId("chosen-file").waitFor();
  await options.scrollIntoViewIfNeeded();
  await shot(page, "06b-new-enrichment");
  await page.getByRole("button", { name: "Transcribe" }).click();
  await page.waitForURL(/\/console\/jobs\/[0-9a-f-]{36}$/, { timeout: 60_000 });
  const jobId = page.url().split("/").pop();
  const job = await (await fetch(`${BASE_URL}/v1/audio/transcriptions/${jobId}`, { headers: { Authorization: `Bearer ${API_KEY}` } })).json();
  log(`enrichment job ${jobId}: ${JSON.stringify(job.stages.map((s) => s.stage))}`);
  check(job.stages.length === 0 || job.stages.some((s) => s.stage === "detect"), "the form's PII options reached the job");

  // --- the job page -----------------------------------------------------------------------
  await page.waitForFunction(
    () => ["completed", "failed", "cancelled"].includes(document.querySelector('[data-testid="job-status"]')?.getAttribute("data-status") ?? ""),
    undefined,
    { timeout: JOB_TIMEOUT_MS, polling: 500 },
  );
  check((await page.getByTestId("job-status").getAttribute("data-status")) === "completed", "the PII job completes");
  const panel = page.getByTestId("entities-panel");
  await panel.waitFor();
  const rows = panel.locator("tbody tr");
  const found = await rows.evaluateAll((els) => els.map((e) => e.getAttribute("data-entity-type")));
  check(found.length >= 3, `the entities panel lists what was found (${found.join(", ")})`);
  const marked = await page.locator("[data-testid=transcript] .word.entity").count();
  check(marked >= 3, `the transcript highlights the entity words (${marked})`);

  const card = rows.filter({ has: page.locator("td", { hasText: "Credit card" }) }).first();
  const target = (await card.count()) ? card : rows.first();
  await target.getByRole("button").click();
  const seek = await page.evaluate(() => document.querySelector('[data-testid="player"]').currentTime);
  check(seek > 1, `clicking an entity's time seeks the player (${seek.toFixed(2)} s)`);

  const redacted = await page.getByTestId("redacted-text").innerText();
  check(/\{[A-Z_]+_1\}/.test(redacted) && !/margaret/i.test(redacted), "the redacted text shows placeholders, not the name");
  await page.waitForFunction(() => {
    const audio = document.querySelector('[data-testid="redacted-player"]');
    if (audio && audio.readyState === 0) audio.load();
    return (audio?.readyState ?? 0) >= 1;
  }, undefined, { timeout: 20_000, polling: 500 });
  check(true, "the redacted audio loads in its player");
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, "07b-job-entities");
  await fetch(`${BASE_URL}/v1/audio/transcriptions/${jobId}`, { method: "DELETE", headers: { Authorization: `Bearer ${API_KEY}` } });
}
