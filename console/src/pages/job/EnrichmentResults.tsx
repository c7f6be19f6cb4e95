import { Button, CopyButton, Group, Paper, Stack, Text } from "@mantine/core";
import { IconDownload } from "@tabler/icons-react";

import { enrichmentPaths } from "../../api/enrichment";
import type { EnrichmentDetail } from "../../api/enrichment";
import type { JobDetail } from "../../api/types";

/** Whether the job produced a redacted copy of its audio (its redact stage completed). */
export function hasRedactedAudio(job: JobDetail): boolean {
  return job.stages.some((s) => s.stage === "redact" && s.status === "completed");
}

/** The redacted audio, the redacted text and the summary of a job that asked for them. */
export function EnrichmentResults({ job }: { job: JobDetail & EnrichmentDetail }) {
  const audio = hasRedactedAudio(job);
  if (!audio && !job.redacted_text && !job.summary) return null;
  const src = enrichmentPaths.redactedAudio(job.id);
  return (
    <Paper p="sm" data-testid="enrichment-results">
      <Stack gap="sm">
        {audio && (
          <div>
            <Group justify="space-between" mb={6}>
              <Text fw={600} size="sm">
                Redacted audio
              </Text>
              <Button component="a" href={src} download size="compact-xs" variant="default" leftSection={<IconDownload size={12} />}>
                Download WAV
              </Button>
            </Group>
            <audio controls preload="none" src={src} aria-label="Redacted audio" style={{ width: "100%", height: 36, display: "block" }} data-testid="redacted-player" />
          </div>
        )}
        {job.summary && (
          <div>
            <Text fw={600} size="sm" mb={4}>
              Summary
            </Text>
            <Text size="sm" style={{ whiteSpace: "pre-wrap" }}>
              {job.summary}
            </Text>
          </div>
        )}
        {job.redacted_text && (
          <div>
            <Group justify="space-between" mb={4}>
              <Text fw={600} size="sm">
                Redacted text
              </Text>
              <CopyButton value={job.redacted_text}>
                {({ copied, copy }) => (
                  <Button size="compact-xs" variant="default" onClick={copy}>
                    {copied ? "Copied" : "Copy"}
                  </Button>
                )}
              </CopyButton>
            </Group>
            <Text size="sm" c="dimmed" mb={4}>
              What every export of this job contains.
            </Text>
            <Text size="sm" style={{ whiteSpace: "pre-wrap" }} data-testid="redacted-text">
              {job.redacted_text}
            </Text>
          </div>
        )}
      </Stack>
    </Paper>
  );
}
