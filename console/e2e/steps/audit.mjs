// The audit log page (/console/audit): the earlier steps' events are there, newest first,
// and the filters narrow the table. Called from console.e2e.mjs with the page of an admin
// session and ctx = { BASE_URL, check, shot, log } (the main script's helpers), after the
// keys step (whose key.created / key.revoked events it looks for).

const KEY_NAME = "e2e-console-key"; // keys.mjs

async function actionsOnPage(page) {
  return page.locator("tr[data-audit-id]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-action")));
}

// The table keeps the previous page's rows while a new one loads: wait until every row matches.
async function waitForRows(page, attribute, value) {
  await page.waitForFunction(
    ([attr, val]) => {
      const rows = [...document.querySelectorAll("tr[data-audit-id]")];
      return rows.length > 0 && rows.every((r) => r.getAttribute(attr) === val);
    },
    [attribute, value],
    { timeout: 15_000, polling: 200 },
  );
}

export async function auditStep(page, ctx) {
  const { BASE_URL, check, shot, log } = ctx;

  await page.goto(`${BASE_URL}/console/`);
  await page.getByRole("navigation").getByRole("link", { name: "Audit log" }).click();
  await page.waitForURL(/\/console\/audit$/);
  await page.getByRole("heading", { name: "Audit log" }).waitFor();
  check(true, "an admin session has an Audit log page in the navigation");

  const rows = page.locator("tr[data-audit-id]");
  await rows.first().waitFor();
  const all = await actionsOnPage(page);
  check(all.length > 0, `the audit table has ${all.length} events`);
  const ids = await rows.evaluateAll((trs) => trs.map((r) => Number(r.getAttribute("data-audit-id"))));
  check(ids.every((id, i) => i === 0 || ids[i - 1] > id), "the events are listed newest first");
  for (const action of ["console.login", "key.created", "key.revoked"]) {
    check(all.includes(action), `the log shows the run's ${action} event`);
  }
  const created = page.locator('tr[data-action="key.created"]', { hasText: KEY_NAME });
  check((await created.count()) >= 1, `the key.created event of ${KEY_NAME} shows its details (name: ${KEY_NAME})`);
  check(/name:/.test(await created.first().innerText()) && !(await created.first().innerText()).includes("{"), "details are shown as key: value, not raw JSON");
  await shot(page, "audit");

  // --- outcome filter: only failures, among them the wrong-key login at the start ---------
  await page.locator('[aria-label="Filter by outcome"] label', { hasText: /^failure$/ }).click();
  await page.waitForURL(/[?&]outcome=failure/);
  await waitForRows(page, "data-outcome", "failure");
  const failures = await actionsOnPage(page);
  check(failures.includes("auth.failed"), `filtering by outcome=failure shows the wrong-key login's auth.failed (${failures.length} failures)`);
  check(!failures.includes("console.login"), "the outcome filter hides the successful console.login events");
  await page.getByRole("button", { name: "Clear filters" }).click();
  await page.waitForURL(/\/console\/audit$/);

  // --- action filter: only key.revoked ----------------------------------------------------
  await page.getByTestId("audit-action-filter").click();
  await page.getByRole("option", { name: "key.revoked", exact: true }).click();
  await page.waitForURL(/[?&]action=key\.revoked/);
  await waitForRows(page, "data-action", "key.revoked");
  const revoked = await actionsOnPage(page);
  check(revoked.length < all.length || all.every((a) => a === "key.revoked"), `filtering by action=key.revoked narrows the table (${all.length} → ${revoked.length} rows)`);
  check((await page.locator('tr[data-action="key.revoked"]', { hasText: KEY_NAME }).count()) >= 1, `the filtered table shows ${KEY_NAME}'s revocation`);
  await shot(page, "audit-filtered");
  log("audit step done");
}
