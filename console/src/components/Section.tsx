import { Group, Paper, Text } from "@mantine/core";
import type { ReactNode } from "react";

/** A titled panel of a page, with an optional hint on the right of its title. */
export function Section({ title, hint, children }: { title: string; hint?: string; children: ReactNode }) {
  return (
    <Paper p="sm">
      <Group justify="space-between" mb="xs" align="baseline">
        <Text fw={600} size="sm">
          {title}
        </Text>
        {hint && (
          <Text size="xs" c="dimmed">
            {hint}
          </Text>
        )}
      </Group>
      {children}
    </Paper>
  );
}
