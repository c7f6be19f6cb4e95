// The login page under the brute-force throttle (gateway/console/login_throttle.py): wrong
// keys from this address until the gateway answers 429, then the page shows how long to
// wait, with a countdown, and Sign in stays disabled until then.
// Called from console.e2e.mjs LAST, on the login page after logging out: afterwards this
// address cannot log in until the throttle window (DALSTON_CONSOLE_LOGIN_WINDOW_S) ends.
// ctx = { check, shot, log } (the main script's helpers).

// The default limit is 10 failures; a few more tries than any sensible setting.
const MAX_TRIES = 30;

export async function loginThrottleStep(page, ctx) {
  const { check, shot, log } = ctx;
  const keyField = page.getByLabel("API key");
  const alert = page.getByTestId("login-error");
  let tries = 0;
  while (tries < MAX_TRIES) {
    tries += 1;
    await keyField.fill(`dk_wrong_guess_${tries}`);
    await page.getByRole("button", { name: /^Sign in/ }).click();
    await alert.waitFor();
    // Wait for this attempt's answer (the alert's words change with it).
    await page.waitForFunction(() => !document.querySelector("button[type=submit][data-loading]"), undefined, { timeout: 10_000 });
    if ((await alert.getAttribute("data-throttled")) === "true") break;
  }
  const words = await alert.innerText();
  check((await alert.getAttribute("data-throttled")) === "true", `after ${tries} wrong keys the gateway throttles this address (429)`);
  check(/Try again in \d+/.test(words), `the login page says how long to wait: "${words.replace(/\s+/g, " ").trim()}"`);
  check(await page.getByRole("button", { name: /^Sign in/ }).isDisabled(), "Sign in is disabled while throttled, with a countdown");
  await shot(page, "login-throttled");
  log("login throttle step done");
}
