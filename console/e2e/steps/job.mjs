// The job page's actions (/console/jobs/{id}): docx and pdf exports, the waveform player,
// renaming a speaker (seen in the transcript and in an export), re-running a job.
// Called from console.e2e.mjs on the completed job's page, with
// ctx = { BASE_URL, ROOT, API_KEY, jobId, JOB_TIMEOUT_MS, check, shot, log }; it leaves the
// browser on that job's page again.

import { readFile } from "node:fs/promises";
import path from "node:path";

// Two voices on two channels: per_channel labels them channel_0 and channel_1 (engines/merge).
const STEREO_FILE = "tests/fixtures/stereo_voices_en.wav";
const NEW_NAME = "Margaret Hale";
const TERMINAL = ["completed", "failed", "cancelled"];

async function download(page, format) {
  const [file] = await Promise.all([page.waitForEvent("download"), page.locator(`[data-export=${format}]`).click()]);
  const where = await file.path();
  return { name: file.suggestedFilename(), bytes: where ? await readFile(where) : Buffer.alloc(0) };
}

// The page of job `id` (not the one it came from, still on screen for a moment) once it has finished.
async function waitForStatus(page, id, timeout) {
  const selector = `[data-testid="job-status"][data-job-id="${id}"]`;
  await page.waitForFunction(
    ({ selector, terminal }) => terminal.includes(document.querySelector(selector)?.getAttribute("data-status") ?? ""),
    { selector, terminal: TERMINAL },
    { timeout, polling: 500 },
  );
  return page.locator(selector).getAttribute("data-status");
}

export async function jobStep(page, ctx) {
  const { BASE_URL, ROOT, API_KEY, jobId, JOB_TIMEOUT_MS, check, shot, log } = ctx;
  const auth = { Authorization: `Bearer ${API_KEY}` };

  // --- docx and pdf ---------------------------------------------------------------------
  const docx = await download(page, "docx");
  check(docx.bytes.length > 1000 && docx.bytes.subarray(0, 2).toString("latin1") === "PK", `the docx export downloads (${docx.name}, ${docx.bytes.length} bytes, a zip)`);
  const pdf = await download(page, "pdf");
  check(pdf.bytes.length > 500 && pdf.bytes.subarray(0, 5).toString("latin1") === "%PDF-", `the pdf export downloads (${pdf.name}, ${pdf.bytes.length} bytes, %PDF-)`);

  // --- a job with speakers --------------------------------------------------------------
  const form = new FormData();
  form.append("file", new Blob([await readFile(path.join(ROOT, STEREO_FILE))], { type: "audio/wav" }), path.basename(STEREO_FILE));
  form.append("speaker_detection", "per_channel");
  const created = await fetch(`${BASE_URL}/v1/audio/transcriptions`, { method: "POST", headers: auth, body: form });
  check(created.status === 201, `a per_channel job is submitted for the speaker checks (HTTP ${created.status})`);
  const speakersJob = (await created.json()).id;
  const jobs = [speakersJob];
  try {
    await page.goto(`${BASE_URL}/console/jobs/${speakersJob}`);
    check((await waitForStatus(page, speakersJob, JOB_TIMEOUT_MS)) === "completed", "the per_channel job completes");
    await page.locator("[data-testid=transcript] .word[data-start]").first().waitFor();

    // --- the waveform -------------------------------------------------------------------
    const waveform = page.getByTestId("waveform");
    await page.waitForFunction(() => document.querySelector('[data-testid="waveform"]')?.getAttribute("data-state") === "ready", undefined, { timeout: 20_000 });
    check(true, "the waveform of the job's audio is drawn");
    const lanes = await page.locator("[data-lane-speaker]").evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute("data-lane-speaker")))]);
    check(lanes.includes("channel_0") && lanes.includes("channel_1"), `the speaker lane under the waveform shows both speakers (${lanes.join(", ")})`);
    // wavesurfer drives the page's one <audio>: a click on the waveform seeks it.
    const box = await waveform.boundingBox();
    await page.mouse.click(box.x + box.width * 0.5, box.y + 20);
    const duration = await page.evaluate(() => document.querySelector("audio").duration);
    let time = 0;
    for (let i = 0; i < 20 && Math.abs(time - duration / 2) > duration * 0.1; i++) {
      await page.waitForTimeout(100);
      time = await page.evaluate(() => document.querySelector("audio").currentTime);
    }
    check(Math.abs(time - duration / 2) <= duration * 0.1, `a click in the middle of the waveform seeks the player (${time.toFixed(2)} of ${duration.toFixed(2)} s)`);
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=transcript] .word.playing").length === 1, undefined, { timeout: 5000 });
    check(true, "the word at the waveform's position is highlighted");
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, "job-waveform");

    // --- rename a speaker ----------------------------------------------------------------
    const chip = page.locator("[data-speaker-chip=channel_0]");
    await chip.click();
    const input = page.getByLabel("Speaker name");
    await input.waitFor();
    await input.fill(NEW_NAME);
    await input.press("Enter"); // keyboard: Enter saves
    const renamed = page.locator(`[data-testid=transcript] [data-speaker="${NEW_NAME}"]`);
    await renamed.first().waitFor();
    check((await page.locator('[data-testid=transcript] [data-speaker="channel_0"]').count()) === 0, `renaming channel_0 to "${NEW_NAME}" relabels its segments`);
    check((await chip.innerText()).includes(NEW_NAME), "the speaker chip shows the new name");
    await page.waitForLoadState("networkidle").catch(() => {});
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, "job-rename");

    await page.reload();
    await renamed.first().waitFor();
    check(true, "the name is stored: it is still there after a reload");
    const txt = await download(page, "txt");
    check(txt.bytes.toString("utf8").includes(`${NEW_NAME}:`), `the txt export names the speaker "${NEW_NAME}"`);
    const srt = await download(page, "srt");
    check(srt.bytes.toString("utf8").includes(NEW_NAME), "the srt export names the speaker too");

    // --- re-run ------------------------------------------------------------------------
    await page.getByRole("button", { name: "Re-run" }).click();
    const dialog = page.getByRole("dialog", { name: "Re-run this job?" });
    await dialog.waitFor();
    const parameters = await dialog.getByTestId("rerun-parameters").innerText();
    check(/per.channel/i.test(parameters) && parameters.includes("stereo_voices_en.wav"), "the re-run confirmation shows the job's parameters");
    await dialog.getByTestId("confirm-rerun").click();
    await page.waitForURL((url) => /\/console\/jobs\/[0-9a-f-]{36}$/.test(url.pathname) && !url.pathname.endsWith(speakersJob), { timeout: 30_000 });
    const rerunId = page.url().split("/").pop();
    jobs.push(rerunId);
    check(true, `re-running opens the new job ${rerunId}`);
    check((await waitForStatus(page, rerunId, JOB_TIMEOUT_MS)) === "completed", "the re-run job completes");
    await page.locator("[data-speaker-chip=channel_0]").waitFor();
    check((await page.locator("[data-speaker-chip=channel_0]").innerText()).includes("channel_0"), "the re-run has its own speakers (names stay with the source job)");
  } finally {
    for (const id of jobs) {
      // A job still running (a failed check) is cancelled first: only finished jobs can be deleted.
      await fetch(`${BASE_URL}/v1/audio/transcriptions/${id}/cancel`, { method: "POST", headers: auth }).catch(() => {});
      await fetch(`${BASE_URL}/v1/audio/transcriptions/${id}`, { method: "DELETE", headers: auth }).catch(() => {});
    }
    log(`removed the step's jobs (${jobs.length})`);
  }

  await page.goto(`${BASE_URL}/console/jobs/${jobId}`);
  await page.locator("[data-testid=transcript] .word[data-start]").first().waitFor();
}
