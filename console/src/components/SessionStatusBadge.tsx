import { Badge } from "@mantine/core";

import { sessionStatusColor } from "../lib/sessions";

const NO_TRUNCATION = { label: { overflow: "visible" } };

export function SessionStatusBadge({ status, size = "sm" }: { status: string; size?: "xs" | "sm" | "md" | "lg" }) {
  return (
    <Badge color={sessionStatusColor(status)} variant={status === "active" ? "filled" : "light"} size={size} radius="sm" styles={NO_TRUNCATION}>
      {status}
    </Badge>
  );
}
