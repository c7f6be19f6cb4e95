// The header's tenant selector (admin sessions): switching makes the pages act for another
// tenant, whose job then opens, audio included; switching back hides it again.
// Called from console.e2e.mjs with the page of an admin session and
// ctx = { BASE_URL, API_KEY, ROOT, check, shot, log } (the main script's helpers).

import { readFile } from "node:fs/promises";
import path from "node:path";

const TENANT = `e2e-tenant-${Date.now().toString(36)}`;

async function api(ctx, method, url, { key, json, form } = {}) {
  const headers = { Authorization: `Bearer ${key ?? ctx.API_KEY}` };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  const response = await fetch(`${ctx.BASE_URL}${url}`, { method, headers, body });
  return { status: response.status, body: response.status === 204 ? null : await response.json() };
}

export async function tenantsStep(page, ctx) {
  const { BASE_URL, ROOT, check, shot, log } = ctx;

  // Another tenant with a key of its own and one job.
  const created = await api(ctx, "POST", "/v1/keys", {
    json: { name: "e2e other tenant", tenant: TENANT, create_tenant: true, scopes: ["jobs:read", "jobs:write"], expires_in_seconds: 900 },
  });
  check(created.status === 201, `a key for a second tenant (${TENANT}) is created (HTTP ${created.status})`);
  const form = new FormData();
  const audio = await readFile(path.join(ROOT, "tests", "fixtures", "short_en.wav"));
  form.append("file", new Blob([audio], { type: "audio/wav" }), "other-tenant.wav");
  const submitted = await api(ctx, "POST", "/v1/audio/transcriptions", { key: created.body.key, form });
  check(submitted.status === 201, `that tenant submits a job (HTTP ${submitted.status})`);
  const jobId = submitted.body.id;

  try {
    await page.goto(`${BASE_URL}/console/jobs`);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.waitForLoadState("networkidle").catch(() => {});
    check((await page.locator(`tr[data-job-id="${jobId}"]`).count()) === 0, "the other tenant's job is not in this tenant's list");

    const selector = page.locator('input[aria-label="Tenant the console acts for"]');
    await selector.click();
    await page.getByRole("option", { name: TENANT, exact: true }).click();
    await page.waitForURL(/\/console\/?$/);
    await page.getByTestId("stat-completed").waitFor();
    check((await selector.inputValue()) === TENANT, `the selector shows the tenant the session now acts for (${TENANT})`);

    await page.goto(`${BASE_URL}/console/jobs`);
    const row = page.locator(`tr[data-job-id="${jobId}"]`);
    await row.waitFor();
    check(true, "after switching, the jobs list is the other tenant's: its job is there");
    await shot(page, "tenant-switched");
    await row.click();
    await page.getByTestId("job-title").waitFor();
    await page.waitForFunction(() => (document.querySelector("audio")?.readyState ?? 0) >= 1, undefined, { timeout: 15_000 });
    check(true, "its job page opens and its audio loads: the session's tenant covers media requests too");

    await selector.click();
    await page.getByRole("option", { name: /\(this key's\)$/ }).click();
    await page.waitForURL(/\/console\/?$/);
    await page.goto(`${BASE_URL}/console/jobs`);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.waitForLoadState("networkidle").catch(() => {});
    check((await page.locator(`tr[data-job-id="${jobId}"]`).count()) === 0, "switching back to the key's own tenant hides that job again");
  } finally {
    // Leave nothing behind: the job once it has finished, then the key.
    for (let i = 0; i < 60; i++) {
      const job = await api(ctx, "GET", `/v1/audio/transcriptions/${jobId}`, { key: created.body.key });
      if (["completed", "failed", "cancelled"].includes(job.body?.status)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    await api(ctx, "DELETE", `/v1/audio/transcriptions/${jobId}`, { key: created.body.key });
    await api(ctx, "DELETE", `/v1/keys/${created.body.id}`);
  }
  log("tenants step done");
}
