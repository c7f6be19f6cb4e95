// The API keys page (/console/keys): create a key, see its secret once, revoke it.
// Called from console.e2e.mjs with the page of an admin session and
// ctx = { BASE_URL, check, shot, log } (the main script's helpers).

const KEY_NAME = "e2e-console-key";
// shared/bootstrap.py: KEY_PREFIX = "dk_"; key_prefix(key) = key[:10] is what listings show.
const SECRET_PREFIX = "dk_";

export async function keysStep(page, ctx) {
  const { BASE_URL, check, shot, log } = ctx;

  await page.goto(`${BASE_URL}/console/`);
  await page.getByRole("navigation").getByRole("link", { name: "API keys" }).click();
  await page.waitForURL(/\/console\/keys$/);
  await page.getByRole("heading", { name: "API keys" }).waitFor();
  check(true, "an admin session has an API keys page in the navigation");

  const own = page.locator("tr", { hasText: "this session's key" });
  await own.waitFor();
  check(await own.getByRole("button", { name: "Revoke" }).isDisabled(), "the session's own key cannot be revoked from the page");

  // --- create -------------------------------------------------------------------------
  await page.getByRole("button", { name: "New key" }).click();
  const form = page.getByRole("dialog", { name: "New API key" });
  await form.waitFor();
  await form.getByRole("textbox", { name: /^Name/ }).fill(KEY_NAME);
  for (const scope of ["jobs:read", "jobs:write", "realtime", "webhooks", "admin"]) {
    const box = form.getByRole("checkbox", { name: scope, exact: true });
    if ((await box.isChecked()) !== (scope === "jobs:read")) await box.click();
  }
  check(await form.getByRole("checkbox", { name: "jobs:read", exact: true }).isChecked(), "the new key form has jobs:read ticked");
  await form.getByRole("button", { name: "Create key" }).click();

  const secretDialog = page.getByRole("dialog", { name: "Your new API key" });
  await secretDialog.waitFor();
  const secret = (await secretDialog.getByTestId("new-key-secret").innerText()).trim();
  check(secret.startsWith(SECRET_PREFIX) && secret.length > 20, `the new key's secret is shown once and starts with ${SECRET_PREFIX}`);
  check(/will not be shown again/i.test(await secretDialog.innerText()), "the secret comes with a warning that it will not be shown again");
  check((await secretDialog.getByRole("button", { name: "Copy the key" }).count()) === 1, "the secret has a copy button");
  await secretDialog.getByTestId("secret-done").click();
  await secretDialog.waitFor({ state: "hidden" });
  check(!(await page.content()).includes(secret), "after closing, the secret is nowhere in the page");

  // --- the row ------------------------------------------------------------------------
  const prefix = secret.slice(0, 10);
  const row = page.locator(`tr[data-key-name="${KEY_NAME}"]`, { hasText: prefix });
  await row.waitFor();
  const rowText = await row.innerText();
  check(/jobs:read/.test(rowText) && /active/i.test(rowText), `the table lists ${KEY_NAME} (${prefix}…) as active with scope jobs:read`);

  // --- revoke (a DELETE with the CSRF header), after a confirmation --------------------
  await row.getByRole("button", { name: "Revoke" }).click();
  const confirm = page.getByRole("dialog", { name: "Revoke this key?" });
  await confirm.waitFor();
  await confirm.getByTestId("confirm-revoke").click();
  await confirm.waitFor({ state: "hidden" });
  await row.locator('[data-testid="key-status"][data-status="revoked"]').waitFor();
  check(/revoked/i.test(await row.locator('[data-testid="key-status"]').innerText()), `revoking ${KEY_NAME} (confirmed) shows it as revoked`);
  check((await row.getByRole("button", { name: "Revoke" }).count()) === 0, "a revoked key has no Revoke button");
  log("keys step done");
  await shot(page, "keys");
}
