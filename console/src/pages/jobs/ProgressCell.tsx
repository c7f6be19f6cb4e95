import { Group, Progress, Text, Tooltip } from "@mantine/core";
import { IconAlertCircle } from "@tabler/icons-react";

import { ACTIVE_STATUSES } from "../../api/types";
import type { JobDetail, JobSummary } from "../../api/types";

/** An active job's progress (from its polled detail), a failed job's error, else a dash. */
export function ProgressCell({ job, detail }: { job: JobSummary; detail: JobDetail | undefined }) {
  if (ACTIVE_STATUSES.includes(job.status)) {
    if (!detail) return <Text size="xs" c="dimmed">…</Text>;
    const pct = Math.round(detail.progress * 100);
    return (
      <Group gap={6} wrap="nowrap">
        <Progress value={pct} w={80} size="sm" animated={job.status === "running"} aria-label="progress" />
        <Text size="xs" c="dimmed" w={40} style={{ whiteSpace: "nowrap" }}>
          {pct} %
        </Text>
      </Group>
    );
  }
  if (job.status === "failed" && job.error) {
    return (
      <Tooltip label={job.error} multiline w={360} withArrow>
        <Group gap={4} wrap="nowrap" c="red">
          <IconAlertCircle size={14} />
          <Text size="xs" lineClamp={1} maw={180}>
            {job.error}
          </Text>
        </Group>
      </Tooltip>
    );
  }
  return <Text size="xs" c="dimmed">—</Text>;
}
