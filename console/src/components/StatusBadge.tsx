import { Badge } from "@mantine/core";
import type { MantineColor } from "@mantine/core";

const COLORS: Record<string, MantineColor> = {
  pending: "gray",
  ready: "gray",
  running: "blue",
  completed: "green",
  failed: "red",
  cancelled: "orange",
  skipped: "gray",
};

// A badge label is a flex item with overflow hidden, so a narrow table column would cut it to "COMPLET…".
const NO_TRUNCATION = { label: { overflow: "visible" } };

export function statusColor(status: string): MantineColor {
  return COLORS[status] ?? "gray";
}

export function StatusBadge({ status, size = "sm" }: { status: string; size?: "xs" | "sm" | "md" | "lg" }) {
  return (
    <Badge color={statusColor(status)} variant={status === "running" ? "filled" : "light"} size={size} radius="sm" styles={NO_TRUNCATION}>
      {status}
    </Badge>
  );
}
