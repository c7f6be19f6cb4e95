import { Alert, Center, Loader, Stack, Text } from "@mantine/core";
import { IconAlertTriangle } from "@tabler/icons-react";
import type { ReactNode } from "react";

import { ApiError, errorMessage } from "../api/client";

export function PageLoader({ label = "Loading…" }: { label?: string }) {
  return (
    <Center mih={200}>
      <Stack align="center" gap="xs">
        <Loader size="sm" />
        <Text size="sm" c="dimmed">
          {label}
        </Text>
      </Stack>
    </Center>
  );
}

export function ErrorAlert({ error, title }: { error: unknown; title?: string }) {
  const forbidden = error instanceof ApiError && error.status === 403;
  return (
    <Alert color={forbidden ? "yellow" : "red"} variant="light" icon={<IconAlertTriangle size={18} />} title={title ?? (forbidden ? "Not allowed" : "Could not load this")}>
      {errorMessage(error)}
    </Alert>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <Text size="sm" c="dimmed" py="md" ta="center">
      {children}
    </Text>
  );
}
