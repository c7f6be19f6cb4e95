// The webhooks page (/console/webhooks): create an endpoint, see its signing secret once,
// disable it, open its (empty) delivery history, delete it.
// Called from console.e2e.mjs with the page of an admin session and
// ctx = { BASE_URL, check, shot, log } (the main script's helpers).

// The gateway resolves a webhook's host and refuses private or unresolvable ones
// (shared/urls.py), and the test machine may have no DNS: a public IP literal needs neither.
const HOOK_URL = "https://93.184.215.14/dalston-hook";
// shared/webhooks.py: SECRET_PREFIX.
const SECRET_PREFIX = "whsec_";

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
  log("webhooks step done");
}
