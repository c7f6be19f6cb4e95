import { Alert, Button, Center, Group, Paper, PasswordInput, Stack, Text, Title } from "@mantine/core";
import { IconAlertTriangle, IconClockPause } from "@tabler/icons-react";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import type { FormEvent } from "react";
import { Navigate, useLocation, useNavigate } from "react-router-dom";

import { login } from "../api/endpoints";
import { keys, useSession } from "../api/queries";
import { formatWait, loginErrorWords, secondsLeft, throttledUntil, throttledWords } from "../lib/login";
import { useNow } from "../lib/useNow";

export default function Login() {
  const client = useQueryClient();
  const navigate = useNavigate();
  const location = useLocation();
  const session = useSession();
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // Set by a 429 from the login throttle: Sign in waits (with a countdown) until then.
  const [retryAt, setRetryAt] = useState<number | null>(null);
  const now = useNow(1000);
  const wait = secondsLeft(retryAt, now);
  const from = (location.state as { from?: string } | null)?.from;
  const target = from && from.startsWith("/") && !from.startsWith("/login") ? from : "/";

  if (session.data) return <Navigate to={target} replace />;

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError("Enter an API key.");
      return;
    }
    if (wait > 0) return;
    setBusy(true);
    setError(null);
    setRetryAt(null);
    try {
      const created = await login(trimmed);
      setKey("");
      client.setQueryData(keys.session, created);
      navigate(target, { replace: true });
    } catch (err) {
      setRetryAt(throttledUntil(err, Date.now()));
      setError(loginErrorWords(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center mih="100vh" p="md">
      <Paper p="xl" w={420} shadow="sm">
        <form onSubmit={onSubmit} noValidate>
          <Stack gap="md">
            <div>
              <Title order={3}>Dalston console</Title>
              <Text size="sm" c="dimmed">
                Sign in with an API key. The key is exchanged for a session cookie and is not stored in this browser.
              </Text>
            </div>
            <PasswordInput
              label="API key"
              placeholder="dk_…"
              value={key}
              onChange={(e) => setKey(e.currentTarget.value)}
              autoComplete="off"
              spellCheck={false}
              data-autofocus
              autoFocus
              name="api_key"
              error={error ? true : undefined}
            />
            {retryAt !== null ? (
              <Alert
                color={wait > 0 ? "orange" : "teal"}
                variant="light"
                icon={<IconClockPause size={18} />}
                role="alert"
                title={wait > 0 ? "Signing in is paused" : undefined}
                data-testid="login-error"
                data-throttled={wait > 0 ? "true" : "false"}
              >
                {throttledWords(wait)}
              </Alert>
            ) : (
              error && (
                <Alert color="red" variant="light" icon={<IconAlertTriangle size={18} />} role="alert" data-testid="login-error">
                  {error}
                </Alert>
              )
            )}
            <Group justify="flex-end">
              <Button type="submit" loading={busy} disabled={wait > 0}>
                {wait > 0 ? `Sign in (${formatWait(wait)})` : "Sign in"}
              </Button>
            </Group>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
