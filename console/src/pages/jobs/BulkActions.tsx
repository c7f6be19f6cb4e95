import { Alert, Button, Group, Modal, Progress, Stack, Table, Text, ThemeIcon, Tooltip } from "@mantine/core";
import { IconCheck, IconInfoCircle, IconPlayerStop, IconTrash, IconX } from "@tabler/icons-react";
import { useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";

import { cancelJob, deleteJob } from "../../api/endpoints";
import { keys } from "../../api/queries";
import type { JobSummary } from "../../api/types";
import { actionLabel, expectedRefusals, runBulk, summaryLine } from "../../lib/bulk";
import type { BulkAction, BulkProgress, BulkResult } from "../../lib/bulk";

interface Props {
  selected: JobSummary[];
  canWrite: boolean;
  /** After a run: the results, so the page can keep the failed jobs selected. */
  onFinished: (results: BulkResult[]) => void;
  onClearSelection: () => void;
}

type Phase = "confirm" | "running" | "done";

const WORDS: Record<BulkAction, { explain: string; refused: string; running: string }> = {
  cancel: {
    explain: "Their queued stages are skipped and they end as cancelled. This cannot be undone.",
    refused: "already finished and cannot be cancelled",
    running: "Cancelling",
  },
  delete: {
    explain: "The jobs, their uploaded audio, stage outputs and transcripts are removed for good.",
    refused: "still pending or running: cancel them first",
    running: "Deleting",
  },
};

const PREVIEW = 6;

function label(job: JobSummary | undefined, id: string): string {
  return job?.audio.filename || id;
}

/** The bar over the jobs table (how many are selected, Cancel N, Delete N) and the confirm →
 * progress → per-job results dialog. Each job is its own request to the per-job endpoint. */
export function BulkActions({ selected, canWrite, onFinished, onClearSelection }: Props) {
  const client = useQueryClient();
  const [action, setAction] = useState<BulkAction | null>(null);
  const [phase, setPhase] = useState<Phase>("confirm");
  const [progress, setProgress] = useState<BulkProgress>({ done: 0, total: 0, failed: 0 });
  const [results, setResults] = useState<BulkResult[]>([]);
  // The jobs of the run, kept so the results can name them after the rows are gone.
  const [batch, setBatch] = useState<JobSummary[]>([]);
  const abort = useRef<AbortController | null>(null);
  const count = selected.length;

  function open(next: BulkAction) {
    setAction(next);
    setPhase("confirm");
    setBatch(selected);
    setResults([]);
  }

  function close() {
    if (phase === "running") return;
    setAction(null);
  }

  async function run() {
    if (!action) return;
    const ids = batch.map((j) => j.id);
    abort.current = new AbortController();
    setPhase("running");
    setProgress({ done: 0, total: ids.length, failed: 0 });
    const out = await runBulk(ids, action === "cancel" ? cancelJob : deleteJob, { onProgress: setProgress, signal: abort.current.signal });
    abort.current = null;
    setResults(out);
    setPhase("done");
    onFinished(out);
    for (const r of out) if (r.ok && action === "cancel") void client.invalidateQueries({ queryKey: keys.job(r.id) });
    void client.invalidateQueries({ queryKey: keys.jobsAll });
  }

  const byId = new Map(batch.map((j) => [j.id, j]));
  const refusals = action ? expectedRefusals(action, batch.map((j) => j.status)) : 0;
  const failures = results.filter((r) => !r.ok);
  const writeHint = canWrite ? null : "This API key lacks the jobs:write scope";

  return (
    <>
      <Group justify="space-between" px="sm" py={8} data-testid="bulk-bar" style={{ borderBottom: "1px solid var(--mantine-color-default-border)" }}>
        <Text size="sm" c={count ? undefined : "dimmed"} data-testid="bulk-count">
          {count ? `${count} selected` : canWrite ? "Select jobs to cancel or delete several at once." : "Read-only key: jobs can be viewed, not cancelled or deleted."}
        </Text>
        <Group gap="xs">
          {count > 0 && (
            <Button variant="subtle" size="xs" onClick={onClearSelection}>
              Clear selection
            </Button>
          )}
          <Tooltip label={writeHint} disabled={!writeHint} withArrow>
            <Button variant="default" size="xs" leftSection={<IconPlayerStop size={14} />} disabled={!canWrite || count === 0} onClick={() => open("cancel")} data-testid="bulk-cancel">
              {count ? `Cancel ${count}` : "Cancel"}
            </Button>
          </Tooltip>
          <Tooltip label={writeHint} disabled={!writeHint} withArrow>
            <Button color="red" variant="light" size="xs" leftSection={<IconTrash size={14} />} disabled={!canWrite || count === 0} onClick={() => open("delete")} data-testid="bulk-delete">
              {count ? `Delete ${count}` : "Delete"}
            </Button>
          </Tooltip>
        </Group>
      </Group>

      <Modal
        opened={action !== null}
        onClose={close}
        closeOnClickOutside={phase !== "running"}
        closeOnEscape={phase !== "running"}
        withCloseButton={phase !== "running"}
        title={action && (phase === "done" ? summaryLine(action, results) : phase === "running" ? `${WORDS[action].running} ${batch.length} jobs…` : `${actionLabel(action, batch.length)}?`)}
        centered
        size="lg"
        closeButtonProps={{ "aria-label": "Close" }}
      >
        {action && phase === "confirm" && (
          <Stack gap="sm">
            <Text size="sm">{WORDS[action].explain}</Text>
            <Stack gap={2}>
              {batch.slice(0, PREVIEW).map((j) => (
                <Text key={j.id} size="sm" c="dimmed" lineClamp={1} style={{ wordBreak: "break-all" }}>
                  {label(j, j.id)}
                </Text>
              ))}
              {batch.length > PREVIEW && (
                <Text size="sm" c="dimmed">
                  and {batch.length - PREVIEW} more
                </Text>
              )}
            </Stack>
            {refusals > 0 && (
              <Alert color="yellow" variant="light" icon={<IconInfoCircle size={18} />} data-testid="bulk-refusals">
                {refusals} of them {refusals === 1 ? "is" : "are"} {WORDS[action].refused}; the gateway will refuse {refusals === 1 ? "it" : "those"} and the rest go ahead.
              </Alert>
            )}
            <Group justify="flex-end" gap="xs">
              <Button variant="default" onClick={close}>
                Keep them
              </Button>
              <Button color={action === "delete" ? "red" : undefined} onClick={() => void run()} data-testid="bulk-confirm">
                {actionLabel(action, batch.length)}
              </Button>
            </Group>
          </Stack>
        )}

        {action && phase === "running" && (
          <Stack gap="sm" data-testid="bulk-progress">
            <Progress value={progress.total ? (progress.done / progress.total) * 100 : 0} aria-label="bulk progress" animated />
            <Text size="sm">
              {progress.done} of {progress.total} done{progress.failed ? `, ${progress.failed} failed` : ""}
            </Text>
            <Group justify="flex-end">
              <Button variant="default" size="xs" onClick={() => abort.current?.abort()}>
                Stop after the jobs in flight
              </Button>
            </Group>
          </Stack>
        )}

        {action && phase === "done" && (
          <Stack gap="sm" data-testid="bulk-summary">
            {failures.length > 0 && (
              <Text size="sm">
                {failures.length === 1 ? "The job that failed stays selected." : "The jobs that failed stay selected."} The gateway said why:
              </Text>
            )}
            <Table verticalSpacing={4} fz="sm">
              <Table.Tbody>
                {results.map((r) => (
                  <Table.Tr key={r.id} data-testid="bulk-result" data-job-id={r.id} data-ok={String(r.ok)}>
                    <Table.Td w={28}>
                      <ThemeIcon size="sm" variant="light" color={r.ok ? "green" : "red"} role="img" aria-label={r.ok ? "done" : "failed"}>
                        {r.ok ? <IconCheck size={14} /> : <IconX size={14} />}
                      </ThemeIcon>
                    </Table.Td>
                    <Table.Td style={{ wordBreak: "break-all" }}>{label(byId.get(r.id), r.id)}</Table.Td>
                    <Table.Td c={r.ok ? "dimmed" : "red"}>{r.ok ? (action === "cancel" ? "cancelled" : "deleted") : r.reason}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
            <Group justify="flex-end">
              <Button onClick={close} data-testid="bulk-done">
                Done
              </Button>
            </Group>
          </Stack>
        )}
      </Modal>
    </>
  );
}
