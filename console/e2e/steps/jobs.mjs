// The Jobs page's filters and bulk actions (/console/jobs): jobs submitted here through the
// API are found by a file-name search that hides the others, the filters survive a reload,
// two jobs are bulk-cancelled and bulk-deleted with a per-job result, a read-only key's bulk
// bar is disabled. Called from console.e2e.mjs with the page of an admin session and
// ctx = { BASE_URL, API_KEY, ROOT, check, shot, log, expectStatuses } (the main script's helpers;
// expectStatuses(list) sets the HTTP statuses the browser may log as failed resources).

import { readFile } from "node:fs/promises";
import path from "node:path";

const AUDIO = "tests/fixtures/short_en.wav";
const TERMINAL = ["completed", "failed", "cancelled"];

async function api(ctx, method, route, body) {
  return fetch(`${ctx.BASE_URL}${route}`, { method, headers: { Authorization: `Bearer ${ctx.API_KEY}` }, body });
}

async function submit(ctx, audio, filename) {
  const form = new FormData();
  form.append("file", new Blob([audio], { type: "audio/wav" }), filename);
  const response = await api(ctx, "POST", "/v1/audio/transcriptions", form);
  if (response.status !== 201) throw new Error(`submitting ${filename}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()).id;
}

async function jobStatus(ctx, id) {
  const response = await api(ctx, "GET", `/v1/audio/transcriptions/${id}`);
  return response.status === 404 ? "deleted" : (await response.json()).status;
}

// The table keeps the previous rows while a new page loads: wait until exactly `ids` are listed.
async function waitForRows(page, ids) {
  await page.waitForFunction(
    (want) => {
      const have = [...document.querySelectorAll("tr[data-job-id]")].map((r) => r.getAttribute("data-job-id"));
      return have.length === want.length && want.every((id) => have.includes(id));
    },
    ids,
    { timeout: 15_000, polling: 200 },
  );
}

async function bulk(page, action, count) {
  await page.getByTestId("select-page").click();
  await page.locator(`[data-testid="bulk-${action}"]:enabled`, { hasText: String(count) }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByTestId("bulk-confirm").waitFor();
  return dialog;
}

export async function jobsStep(page, ctx) {
  const { BASE_URL, ROOT, check, shot, log } = ctx;
  const tag = `e2e-bulk-${Date.now().toString(36)}`;
  const audio = await readFile(path.join(ROOT, AUDIO));
  const mine = [await submit(ctx, audio, `${tag}-first.wav`), await submit(ctx, audio, `${tag}-second.wav`)];
  const other = await submit(ctx, audio, `unrelated-${Date.now().toString(36)}.wav`);
  log(`submitted ${mine.join(", ")} (named ${tag}-*) and ${other} (not)`);

  try {
    // --- bulk cancel, first: seconds after submission a job may still be pending or running ------
    // (a short file finishes fast, so either outcome is possible; each is checked against the API)
    await page.goto(`${BASE_URL}/console/jobs?q=${tag}`);
    await waitForRows(page, mine);
    ctx.expectStatuses([409]); // a job that finished meanwhile cannot be cancelled: reported, not an error
    const cancelDialog = await bulk(page, "cancel", 2);
    await cancelDialog.getByTestId("bulk-confirm").click();
    await cancelDialog.getByTestId("bulk-summary").waitFor({ timeout: 30_000 });
    const results = await cancelDialog.getByTestId("bulk-result").evaluateAll((rows) =>
      rows.map((r) => ({ id: r.getAttribute("data-job-id"), ok: r.getAttribute("data-ok") === "true", text: r.textContent })),
    );
    check(results.length === 2 && mine.every((id) => results.some((r) => r.id === id)), "the cancel summary has a line for each of the two jobs");
    for (const r of results) {
      const status = await jobStatus(ctx, r.id);
      if (r.ok) check(status === "cancelled", `job ${r.id.slice(0, 8)}: reported cancelled, and the API says ${status}`);
      else check(/already/.test(r.text) && ["completed", "failed"].includes(status), `job ${r.id.slice(0, 8)}: reported not cancellable ("${r.text}"), the API says ${status}`);
    }
    await page.waitForTimeout(300); // the modal's fade-in
    await shot(page, "jobs-bulk", { settle: false });
    await cancelDialog.getByTestId("bulk-done").click();
    await cancelDialog.waitFor({ state: "hidden" });
    ctx.expectStatuses([]);

    // --- filters --------------------------------------------------------------------------
    await page.goto(`${BASE_URL}/console/jobs`);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.locator(`tr[data-job-id="${other}"]`).waitFor();
    check(true, "without filters the unrelated job is listed");

    await page.getByRole("textbox", { name: "File name" }).fill(tag.toUpperCase());
    await page.waitForURL((url) => url.searchParams.get("q") === tag.toUpperCase());
    await waitForRows(page, mine);
    check(true, "a (case-insensitive) file-name search lists exactly the two matching jobs and hides the other");

    await page.reload();
    await waitForRows(page, mine);
    check((await page.getByRole("textbox", { name: "File name" }).inputValue()) === tag.toUpperCase(), "the search lives in the URL and survives a reload");

    const today = new Date();
    const day = `${today.getFullYear()}-${String(today.getMonth() + 1).padStart(2, "0")}-${String(today.getDate()).padStart(2, "0")}`;
    await page.goto(`${BASE_URL}/console/jobs?q=${tag}&from=${day}&to=${day}&speaker_detection=none`);
    await waitForRows(page, mine);
    check(true, "today's date range with speaker mode none still lists the two jobs");
    await page.mouse.move(0, 0);
    await shot(page, "jobs-filters");

    await page.goto(`${BASE_URL}/console/jobs?q=${tag}&speaker_detection=per_channel`);
    await page.getByTestId("jobs-empty-filtered").waitFor();
    check(/no jobs match these filters/i.test(await page.getByTestId("jobs-empty-filtered").innerText()), "a filter nothing matches says so, with a button to clear the filters");

    // --- bulk delete --------------------------------------------------------------------------
    // A job that was not cancellable was finished already; wait for the list to show every job ended.
    for (const id of mine) {
      for (let i = 0; i < 60 && !TERMINAL.includes(await jobStatus(ctx, id)); i++) await page.waitForTimeout(500);
    }
    await page.goto(`${BASE_URL}/console/jobs?q=${tag}`);
    await waitForRows(page, mine);
    const deleteDialog = await bulk(page, "delete", 2);
    check(/removed for good/.test(await deleteDialog.innerText()), "the delete confirmation says what is removed");
    await deleteDialog.getByTestId("bulk-confirm").click();
    await deleteDialog.getByTestId("bulk-summary").waitFor({ timeout: 30_000 });
    const deleted = await deleteDialog.locator('[data-testid="bulk-result"][data-ok="true"]').count();
    check(deleted === 2, `both jobs are reported deleted (${deleted})`);
    await deleteDialog.getByTestId("bulk-done").click();
    await page.getByTestId("jobs-empty-filtered").waitFor();
    for (const id of mine) check((await jobStatus(ctx, id)) === "deleted", `job ${id.slice(0, 8)} is gone from the API`);

    await page.getByTestId("jobs-empty-filtered").getByRole("button", { name: "Clear filters" }).click();
    await page.waitForURL((url) => !url.searchParams.has("q"));
    await page.locator(`tr[data-job-id="${other}"]`).waitFor();
    check((await page.getByRole("textbox", { name: "File name" }).inputValue()) === "", "Clear filters empties the search and lists the other job again");

    // --- a read-only key: the bulk bar is disabled ----------------------------------------------
    const created = await fetch(`${BASE_URL}/v1/keys`, {
      method: "POST",
      headers: { Authorization: `Bearer ${ctx.API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "console e2e jobs read-only", scopes: ["jobs:read"], expires_in_seconds: 600 }),
    });
    const readOnly = await created.json();
    const roContext = await page.context().browser().newContext({ viewport: { width: 1440, height: 900 } });
    try {
      const ro = await roContext.newPage();
      await ro.goto(`${BASE_URL}/console/login`);
      await ro.getByLabel("API key").fill(readOnly.key);
      await ro.getByRole("button", { name: "Sign in" }).click();
      await ro.waitForURL(/\/console\/?$/);
      await ro.goto(`${BASE_URL}/console/jobs`);
      await ro.locator(`tr[data-job-id="${other}"]`).waitFor();
      check(
        (await ro.getByTestId("bulk-cancel").isDisabled()) && (await ro.getByTestId("bulk-delete").isDisabled()) && (await ro.getByTestId("select-page").isDisabled()),
        "a read-only key's bulk Cancel / Delete and row selection are disabled",
      );
    } finally {
      await roContext.close();
      await fetch(`${BASE_URL}/v1/keys/${readOnly.id}`, { method: "DELETE", headers: { Authorization: `Bearer ${ctx.API_KEY}` } });
    }
  } finally {
    // Whatever happened above, leave none of the two bulk jobs behind. The unrelated job stays:
    // a completed job, as a fleet that was used has (later steps may count its tasks).
    for (const id of mine) {
      await api(ctx, "POST", `/v1/audio/transcriptions/${id}/cancel`).catch(() => {});
      for (let i = 0; i < 20 && !TERMINAL.includes(await jobStatus(ctx, id)) && (await jobStatus(ctx, id)) !== "deleted"; i++) await page.waitForTimeout(500);
      await api(ctx, "DELETE", `/v1/audio/transcriptions/${id}`).catch(() => {});
    }
  }
}
