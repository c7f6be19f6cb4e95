import { Text } from "@mantine/core";
import type { ReactNode } from "react";

/** A labelled fact in a page's summary grid (duration, model, …). */
export function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <Text size="sm" component="div">
        {children}
      </Text>
    </div>
  );
}
