// The realtime session pages: stream the fixture through the native WebSocket from the
// logged-in page (the session cookie authenticates a same-origin WebSocket), then find the
// session in /console/sessions, open it, and check its transcript and recording.
//
// ctx: { BASE_URL, ROOT, log, check, shot }.

import { readFile } from "node:fs/promises";
import path from "node:path";

const WAV_HEADER_BYTES = 44;
const CHUNK_MS = 100;

/** The fixture's PCM16 bytes (after the 44-byte header) and its format, read from the header. */
async function readPcm(file) {
  const wav = await readFile(file);
  if (wav.toString("ascii", 0, 4) !== "RIFF" || wav.toString("ascii", 8, 12) !== "WAVE") throw new Error(`${file} is not a WAV file`);
  const channels = wav.readUInt16LE(22);
  const sampleRate = wav.readUInt32LE(24);
  const bits = wav.readUInt16LE(34);
  if (channels !== 1 || bits !== 16 || wav.toString("ascii", 36, 40) !== "data") throw new Error(`${file}: expected a plain mono PCM16 WAV`);
  return { pcm: wav.subarray(WAV_HEADER_BYTES), sampleRate };
}

export async function sessionsStep(page, ctx) {
  const { BASE_URL, ROOT, log, check, shot } = ctx;
  const audioFile = path.join(ROOT, "tests", "fixtures", "speech_en.wav");
  const expected = (await readFile(path.join(ROOT, "tests", "fixtures", "speech_en.txt"), "utf8")).toLowerCase();
  const { pcm, sampleRate } = await readPcm(audioFile);
  const chunkBytes = Math.round((sampleRate * CHUNK_MS) / 1000) * 2;

  // --- one real session -------------------------------------------------------------------
  const wsBase = BASE_URL.replace(/^http/, "ws");
  const url = `${wsBase}/v1/audio/transcriptions/stream?model=tiny.en&language=en&encoding=pcm_s16le&sample_rate=${sampleRate}&word_timestamps=true`;
  log(`streaming ${path.basename(audioFile)} (${(pcm.length / 2 / sampleRate).toFixed(1)} s at ${sampleRate} Hz) to ${url}`);
  const result = await page.evaluate(
    async ({ url, b64, chunkBytes, chunkMs }) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const messages = [];
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      const closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
      ws.addEventListener("message", (e) => {
        if (typeof e.data === "string") {
          try {
            messages.push(JSON.parse(e.data));
          } catch {
            messages.push({ type: "unparsed", text: e.data });
          }
        }
      });
      const opened = await Promise.race([
        new Promise((resolve) => ws.addEventListener("open", () => resolve(true))),
        closed.then(() => false),
        new Promise((resolve) => setTimeout(() => resolve(false), 30_000)),
      ]);
      if (!opened) return { opened: false, messages, close: await Promise.race([closed, Promise.resolve(null)]) };
      // Twice real time: a 100 ms chunk every 50 ms.
      for (let at = 0; at < bytes.length; at += chunkBytes) {
        ws.send(bytes.subarray(at, Math.min(at + chunkBytes, bytes.length)));
        await new Promise((r) => setTimeout(r, chunkMs / 2));
      }
      ws.send(JSON.stringify({ type: "end" }));
      const close = await Promise.race([closed, new Promise((resolve) => setTimeout(() => resolve(null), 60_000))]);
      if (!close) ws.close();
      return { opened: true, messages, close };
    },
    { url, b64: pcm.toString("base64"), chunkBytes, chunkMs: CHUNK_MS },
  );
  const types = result.messages.map((m) => m.type);
  check(result.opened, `the native realtime WebSocket opened from the logged-in page${result.opened ? "" : ` (messages: ${JSON.stringify(result.messages).slice(0, 300)})`}`);
  const begin = result.messages.find((m) => m.type === "session.begin");
  const end = result.messages.find((m) => m.type === "session.end");
  check(Boolean(begin?.session_id), `the session began (${begin?.session_id})`);
  check(Boolean(end) && result.close !== null, `the session ended and closed (close ${result.close?.code}; ${types.filter((t) => t === "transcript.final").length} finals)`);
  const sessionId = begin.session_id;

  // --- the list -----------------------------------------------------------------------------
  await page.getByRole("navigation").getByRole("link", { name: "Realtime sessions" }).click();
  await page.waitForURL(/\/console\/sessions$/);
  await page.getByRole("heading", { name: "Realtime sessions" }).waitFor();
  const row = page.locator(`tr[data-session-id="${sessionId}"]`);
  await row.waitFor();
  await page.waitForFunction((id) => /completed/i.test(document.querySelector(`tr[data-session-id="${id}"]`)?.textContent ?? ""), sessionId, { timeout: 20_000 });
  const rowText = await row.innerText();
  check(/completed/i.test(rowText) && /yes/.test(rowText), `the sessions table lists the session as completed, with a recording`);
  await shot(page, "sessions");

  // --- the session --------------------------------------------------------------------------
  await row.click();
  await page.waitForURL(new RegExp(`/console/sessions/${sessionId}$`));
  await page.getByTestId("session-title").waitFor();
  check((await page.getByTestId("session-status").getAttribute("data-status")) === "completed", "a row click opens the session, which shows completed");
  const transcript = page.getByTestId("transcript");
  await transcript.locator(".segment").first().waitFor({ timeout: 15_000 });
  const text = (await transcript.innerText()).toLowerCase();
  const found = ["quick", "brown", "fox", "lazy", "dog", "speech", "recognition", "spoken", "written", "text", "server", "audio", "laptop"].filter(
    (w) => expected.includes(w) && text.includes(w),
  );
  check(found.length >= 4, `the session transcript has expected words (${found.join(", ")})`);
  await page.waitForFunction(() => (document.querySelector("audio")?.readyState ?? 0) >= 1, undefined, { timeout: 15_000 });
  const duration = await page.evaluate(() => document.querySelector("audio").duration);
  check(Number.isFinite(duration) && duration > 5, `the session's recording plays (/audio, ${duration?.toFixed?.(2)} s)`);

  const words = transcript.locator(".word[data-start]");
  if ((await words.count()) > 2) {
    const word = words.nth(2);
    const start = Number(await word.getAttribute("data-start"));
    await word.click();
    await page.waitForFunction((t) => Math.abs(document.querySelector("audio").currentTime - t) <= 0.3, start, { timeout: 5000 });
    check(true, `clicking a word seeks the session's player to ${start} s`);
  } else {
    log("the session's segments carry no words: word seeking not checked");
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, "session");
  return sessionId;
}
