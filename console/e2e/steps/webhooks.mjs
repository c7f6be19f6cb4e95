// The webhooks page (/console/webhooks): create an endpoint, see its signing secret once,
// edit it, disable it, open its (empty) delivery history, delete it; then a real delivery to
// a receiver on this machine (the fleet allows private URLs for it), redelivered with the
// Redeliver button: the same webhook-id arrives again and the attempt joins the history.
// Called from console.e2e.mjs with the page of an admin session and
// ctx = { BASE_URL, API_KEY, AUDIO_FILE, check, shot, log } (the main script's helpers).

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import path from "node:path";

// The gateway resolves a webhook's host and refuses private or unresolvable ones
// (shared/urls.py), and the test machine may have no DNS: a public IP literal needs neither.
const HOOK_URL = "https://93.184.215.14/dalston-hook";
// shared/webhooks.py: SECRET_PREFIX.
const SECRET_PREFIX = "whsec_";

/** A receiver on 127.0.0.1 that records POSTs and answers with `statuses` in turn, then 200. */
async function startReceiver(statuses) {
  const requests = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      requests.push({ headers: req.headers, body });
      const status = statuses.shift() ?? 200;
      res.writeHead(status, { "content-type": "text/plain" }).end(`answered ${status}`);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, requests, close: () => new Promise((resolve) => server.close(resolve)) };
}

async function gateway(ctx, method, url, { json, form } = {}) {
  const headers = { Authorization: `Bearer ${ctx.API_KEY}`, ...(json ? { "Content-Type": "application/json" } : {}) };
  const response = await fetch(`${ctx.BASE_URL}${url}`, { method, headers, body: json ? JSON.stringify(json) : form });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

async function until(what, probe, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A job that finishes at once: submitted and cancelled (or completed, if the fleet is quicker). */
async function finishedJob(ctx) {
  const form = new FormData();
  form.append("file", new Blob([await readFile(ctx.AUDIO_FILE)], { type: "audio/wav" }), path.basename(ctx.AUDIO_FILE));
  const created = await gateway(ctx, "POST", "/v1/audio/transcriptions", { form });
  if (created.status >= 300) throw new Error(`submitting a job failed: HTTP ${created.status}`);
  await gateway(ctx, "POST", `/v1/audio/transcriptions/${created.json.id}/cancel`);
  return created.json.id;
}

async function redeliverStep(page, ctx) {
  const { check, shot } = ctx;
  const receiver = await startReceiver([503]); // the first attempt fails, its retry succeeds
  let webhookId = null;
  try {
    const registered = await gateway(ctx, "POST", "/v1/webhooks", { json: { url: receiver.url, description: "console e2e receiver" } });
    check(registered.status === 201, `an endpoint for a receiver on this machine is registered (HTTP ${registered.status})`);
    webhookId = registered.json.id;
    const jobId = await finishedJob(ctx);
    const deliveries = `/v1/webhooks/${webhookId}/deliveries`;
    const delivered = await until("the delivery and its retry", async () => {
      const list = (await gateway(ctx, "GET", deliveries)).json?.deliveries ?? [];
      return list.find((d) => d.job_id === jobId && d.status === "delivered");
    }, 90_000);
    check(delivered.attempts === 2 && receiver.requests.length === 2, "the receiver's 503 was retried and the delivery delivered");

    await page.goto(`${ctx.BASE_URL}/console/webhooks`);
    const row = page.locator(`tr[data-webhook-id="${webhookId}"]`);
    await row.getByTestId("toggle-deliveries").click();
    const delivery = page.locator(`tr[data-deliveries-for="${webhookId}"] tr[data-delivery-id="${delivered.id}"]`);
    await delivery.waitFor();
    const button = delivery.getByTestId("redeliver");
    check(await button.isEnabled(), "a delivered delivery of an active endpoint has an enabled Redeliver button");
    await button.click();
    // The row is queued again, then the deliverer's new attempt (#3) appears in its history.
    await delivery.getByText(/#3 ·/).waitFor({ timeout: 30_000 });
    await delivery.getByText("delivered", { exact: true }).waitFor();
    check(receiver.requests.length === 3, "the receiver got the delivery a third time");
    const ids = new Set(receiver.requests.map((r) => r.headers["webhook-id"]));
    check(ids.size === 1 && receiver.requests[2].body === receiver.requests[0].body, "the redelivery carries the same webhook-id and body (receivers deduplicate)");
    check(/#1 ·[\s\S]*503[\s\S]*#2 ·[\s\S]*200[\s\S]*#3 ·[\s\S]*200/.test(await delivery.innerText()), "the history shows 503, then 200, then the redelivery's 200");
    await page.mouse.move(0, 0);
    await shot(page, "webhooks-redeliver");

    // A disabled endpoint cannot be redelivered to: the button says why.
    await row.locator(".mantine-Switch-track").click();
    await row.locator('[data-testid="webhook-state"][data-state="disabled"]').waitFor();
    await delivery.locator('[data-testid="redeliver"][disabled]').waitFor();
    check(true, "disabling the endpoint disables its Redeliver buttons");
  } finally {
    if (webhookId) await gateway(ctx, "DELETE", `/v1/webhooks/${webhookId}`);
    await receiver.close();
  }
}

export async function webhooksStep(page, ctx) {
  const { BASE_URL, check, shot, log } = ctx;

  await page.goto(`${BASE_URL}/console/`);
  await page.getByRole("navigation").getByRole("link", { name: "Webhooks" }).click();
  await page.waitForURL(/\/console\/webhooks$/);
  await page.getByRole("heading", { name: "Webhooks" }).waitFor();
  check(true, "an admin session has a Webhooks page in the navigation");

  // A left-over endpoint of an earlier run would make the row ambiguous: remove it first.
  const row = page.locator(`tr[data-webhook-url="${HOOK_URL}"]`);
  await page.waitForLoadState("networkidle").catch(() => {});
  while ((await row.count()) > 0) {
    await row.first().getByRole("button", { name: "Delete" }).click();
    const confirm = page.getByRole("dialog", { name: "Delete this endpoint?" });
    await confirm.getByTestId("confirm-delete").click();
    await confirm.waitFor({ state: "hidden" });
    await page.waitForLoadState("networkidle").catch(() => {});
  }

  // --- create -------------------------------------------------------------------------
  await page.getByRole("button", { name: "New endpoint" }).click();
  const form = page.getByRole("dialog", { name: "New webhook endpoint" });
  await form.waitFor();
  await form.getByRole("textbox", { name: /^URL/ }).fill(HOOK_URL);
  for (const event of ["job.completed", "job.failed", "job.cancelled"]) {
    const box = form.getByRole("checkbox", { name: event, exact: true });
    if ((await box.isChecked()) !== (event === "job.completed")) await box.click();
  }
  await form.getByRole("textbox", { name: /^Description/ }).fill("console e2e");
  await form.getByRole("button", { name: "Create endpoint" }).click();

  const secretDialog = page.getByRole("dialog", { name: "The endpoint's signing secret" });
  await secretDialog.waitFor();
  const secret = (await secretDialog.getByTestId("webhook-secret").innerText()).trim();
  check(secret.startsWith(SECRET_PREFIX) && secret.length > 20, `the new endpoint's signing secret is shown once and starts with ${SECRET_PREFIX}`);
  check(/will not be shown again/i.test(await secretDialog.innerText()), "the secret comes with a warning that it will not be shown again");
  check((await secretDialog.getByRole("button", { name: "Copy the secret" }).count()) === 1, "the secret has a copy button");
  await secretDialog.getByTestId("secret-done").click();
  await secretDialog.waitFor({ state: "hidden" });
  check(!(await page.content()).includes(secret), "after closing, the secret is nowhere in the page");

  // --- the row ------------------------------------------------------------------------
  await row.waitFor();
  const rowText = await row.innerText();
  check(/job\.completed/.test(rowText) && !/job\.failed/.test(rowText), `the table lists ${HOOK_URL} with the event job.completed`);
  check((await row.locator('[data-testid="webhook-state"]').getAttribute("data-state")) === "active", "the new endpoint is active");

  // --- edit: URL, events and description (a PATCH) -------------------------------------
  await row.getByTestId("edit-webhook").click();
  const edit = page.getByRole("dialog", { name: "Edit webhook endpoint" });
  await edit.waitFor();
  check((await edit.getByRole("textbox", { name: /^URL/ }).inputValue()) === HOOK_URL, "the edit form starts from the endpoint's URL");
  await edit.getByRole("checkbox", { name: "job.failed", exact: true }).click();
  await edit.getByRole("textbox", { name: /^Description/ }).fill("console e2e, edited");
  await edit.getByRole("button", { name: "Save changes" }).click();
  await edit.waitFor({ state: "hidden" });
  await row.getByText("console e2e, edited").waitFor();
  check(/job\.completed[\s\S]*job\.failed/.test(await row.innerText()), "editing adds job.failed and changes the description");

  // --- disable (a PATCH with the CSRF header) -----------------------------------------
  // The switch's input is visually hidden; its track is what a user clicks.
  await row.locator(".mantine-Switch-track").click();
  await row.locator('[data-testid="webhook-state"][data-state="disabled"]').waitFor();
  check(!(await row.getByTestId("toggle-active").isChecked()), "the toggle disables the endpoint");

  // --- the (empty) delivery history ---------------------------------------------------
  await row.getByTestId("toggle-deliveries").click();
  const id = await row.getAttribute("data-webhook-id");
  const deliveries = page.locator(`tr[data-deliveries-for="${id}"]`);
  await deliveries.getByTestId("deliveries-empty").waitFor();
  check(true, "the endpoint's delivery history opens and says there are no deliveries yet");
  await page.mouse.move(0, 0); // no tooltip in the picture
  await shot(page, "webhooks");

  // --- delete, after a confirmation ---------------------------------------------------
  await row.getByRole("button", { name: "Delete" }).click();
  const confirm = page.getByRole("dialog", { name: "Delete this endpoint?" });
  await confirm.waitFor();
  await confirm.getByTestId("confirm-delete").click();
  await confirm.waitFor({ state: "hidden" });
  await row.waitFor({ state: "detached" });
  check(true, `deleting ${HOOK_URL} (confirmed) removes it from the table`);

  // --- a real delivery, redelivered ------------------------------------------------------
  await redeliverStep(page, ctx);
  log("webhooks step done");
}
