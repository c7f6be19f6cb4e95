import { Alert, Button, Center, Group, Paper, PasswordInput, Stack, Text, Title } from "@mantine/core";
import { IconAlertTriangle } from "@tabler/icons-react";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import type { FormEvent } from "react";
import { Navigate, useLocation, useNavigate } from "react-router-dom";

import { ApiError } from "../api/client";
import { login } from "../api/endpoints";
import { keys, useSession } from "../api/queries";

function loginErrorWords(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return "That API key was not accepted. It may be mistyped, revoked or expired.";
    if (err.status === 429) return "Too many attempts. Wait a minute and try again.";
    if (err.status === 0) return err.message;
    return `The gateway refused the login: ${err.message}`;
  }
  return "The login failed for an unexpected reason. Try again.";
}

export default function Login() {
  const client = useQueryClient();
  const navigate = useNavigate();
  const location = useLocation();
  const session = useSession();
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
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
    setBusy(true);
    setError(null);
    try {
      const created = await login(trimmed);
      setKey("");
      client.setQueryData(keys.session, created);
      navigate(target, { replace: true });
    } catch (err) {
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
            {error && (
              <Alert color="red" variant="light" icon={<IconAlertTriangle size={18} />} role="alert" data-testid="login-error">
                {error}
              </Alert>
            )}
            <Group justify="flex-end">
              <Button type="submit" loading={busy}>
                Sign in
              </Button>
            </Group>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
