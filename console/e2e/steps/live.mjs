// The live page: Chromium's fake microphone plays a speech fixture once (the launch flags
// from `liveChromiumArgs`), the page captures it through the AudioWorklet and streams it
// over the native WebSocket; the finals it shows must match the fixture's text
// (WER <= 0.35), and the session must then be listed in /console/sessions.
//
// ctx: { BASE_URL, ROOT, log, check, shot }.

import { readFile } from "node:fs/promises";
import path from "node:path";

import { wer } from "../wer.mjs";

const FIXTURE = "speech_en";
const MAX_WER = 0.35;

function fixture(ROOT, ext) {
  return path.join(ROOT, "tests", "fixtures", `${FIXTURE}.${ext}`);
}

/**
 * Chromium flags: a fake microphone that plays the fixture once, then silence (`%noloop`),
 * and a permission prompt that grants itself. Chromium reads 16-bit PCM WAV at any rate.
 */
export function liveChromiumArgs(ROOT) {
  return ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", `--use-file-for-fake-audio-capture=${fixture(ROOT, "wav")}%noloop`];
}

/** Seconds of audio in a PCM WAV, from its fmt and data chunks. */
async function wavSeconds(file) {
  const wav = await readFile(file);
  if (wav.toString("ascii", 0, 4) !== "RIFF" || wav.toString("ascii", 8, 12) !== "WAVE") throw new Error(`${file} is not a WAV file`);
  let byteRate = 0;
  for (let at = 12; at + 8 <= wav.length; ) {
    const id = wav.toString("ascii", at, at + 4);
    const size = wav.readUInt32LE(at + 4);
    if (id === "fmt ") byteRate = wav.readUInt32LE(at + 16);
    if (id === "data" && byteRate > 0) return Math.min(size, wav.length - at - 8) / byteRate;
    at += 8 + size + (size % 2);
  }
  throw new Error(`${file}: no fmt/data chunks`);
}

async function finalsText(page) {
  return (await page.getByTestId("live-final-text").allInnerTexts()).join(" ");
}

export async function liveStep(page, ctx) {
  const { BASE_URL, ROOT, log, check, shot } = ctx;
  const truth = (await readFile(fixture(ROOT, "txt"), "utf8")).trim();
  const seconds = await wavSeconds(fixture(ROOT, "wav"));
  await page.context().grantPermissions(["microphone"], { origin: BASE_URL });

  await page.getByRole("navigation").getByRole("link", { name: "Live transcription" }).click();
  await page.waitForURL(/\/console\/live$/);
  await page.getByRole("heading", { name: "Live transcription" }).waitFor();
  // The model list comes from GET /v1/realtime/status: wait for it before starting.
  await page.waitForFunction(() => /slots free/.test(document.querySelector('[data-testid="live-capacity"]')?.textContent ?? ""), undefined, { timeout: 20_000 });
  const model = await page.getByRole("textbox", { name: "Model" }).inputValue();
  check(model !== "", `the live page offers the realtime workers' models (${model}; ${await page.getByTestId("live-capacity").innerText()})`);
  await shot(page, "live-idle");

  // --- start: the fixture plays from the moment the microphone opens ---------------------
  const start = page.getByTestId("live-start");
  check(await start.isEnabled(), "Start is enabled");
  await start.click();
  await page.waitForFunction(() => document.querySelector('[data-testid="live-phase"]')?.getAttribute("data-phase") === "live", undefined, { timeout: 30_000 });
  const startedAt = Date.now();
  const sessionLink = page.getByTestId("live-session-link");
  const sessionId = (await sessionLink.innerText()).trim();
  check(/^[0-9a-f-]{36}$/.test(sessionId), `the session began and the page links it (${sessionId})`);

  // A level on the meter and a first final while the fixture is still playing.
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="live-level"] [role="progressbar"]')?.getAttribute("aria-valuenow") ?? 0) > 0, undefined, {
    timeout: 10_000,
  });
  check(true, "the level meter moves while the microphone plays speech");
  await page.getByTestId("live-final").first().waitFor({ timeout: 30_000 });
  check(true, `a final arrived while speaking (${((Date.now() - startedAt) / 1000).toFixed(1)} s after the session began)`);
  await shot(page, "live-running", { settle: false });

  // Until the fixture has played, plus time for the last utterance's endpoint and decode;
  // then until the finals stop changing (no open partial) for 2 s.
  const playedBy = startedAt + seconds * 1000 + 2500;
  if (Date.now() < playedBy) await page.waitForTimeout(playedBy - Date.now());
  let previous = "";
  let stableSince = Date.now();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const now = `${await finalsText(page)}|${await page.getByTestId("live-partial").count()}`;
    if (now !== previous) {
      previous = now;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= 2000 && now.endsWith("|0")) break;
    await page.waitForTimeout(250);
  }

  // --- stop: `end`, then the worker's last final and session.end -----------------------
  await page.getByTestId("live-stop").click();
  await page.waitForFunction(() => ["ended", "failed"].includes(document.querySelector('[data-testid="live-phase"]')?.getAttribute("data-phase") ?? ""), undefined, {
    timeout: 60_000,
  });
  const phase = await page.getByTestId("live-phase").getAttribute("data-phase");
  const problem = phase === "failed" ? await page.getByTestId("live-error").innerText() : "";
  check(phase === "ended", `Stop ends the session cleanly (${phase}${problem ? `: ${problem}` : ""})`);
  await page.getByTestId("live-stats").waitFor();
  const heard = await finalsText(page);
  const finals = await page.getByTestId("live-final").count();
  const score = wer(truth, heard);
  log(`live transcript (${finals} finals): "${heard}"`);
  log(`live WER ${score.toFixed(3)} against ${FIXTURE}.txt ("${truth}")`);
  check(score <= MAX_WER, `the live page's finals match the fixture: WER ${score.toFixed(3)} <= ${MAX_WER}`);
  await shot(page, "live-done");

  // --- the session it made ------------------------------------------------------------------
  await sessionLink.click();
  await page.waitForURL(new RegExp(`/console/sessions/${sessionId}$`));
  await page.getByTestId("session-title").waitFor();
  check(true, "the session link opens the session's page");
  await page.goto(`${BASE_URL}/console/sessions`);
  await page.getByRole("heading", { name: "Realtime sessions" }).waitFor();
  const row = page.locator(`tr[data-session-id="${sessionId}"]`);
  await row.waitFor();
  await page.waitForFunction((id) => /completed/i.test(document.querySelector(`tr[data-session-id="${id}"]`)?.textContent ?? ""), sessionId, { timeout: 20_000 });
  check(true, "the live session is listed in /console/sessions as completed");
  return { sessionId, wer: score };
}
