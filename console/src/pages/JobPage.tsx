import { ActionIcon, Alert, Anchor, Box, Button, CopyButton, Group, Modal, Paper, Progress, SimpleGrid, Stack, Text, Title, Tooltip } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconAlertTriangle, IconCheck, IconCopy, IconDownload, IconInfoCircle, IconPlayerStop, IconRefresh, IconTrash } from "@tabler/icons-react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { ApiError, errorMessage } from "../api/client";
import { cancelJob, deleteJob, EXPORT_FORMATS, paths } from "../api/endpoints";
import { rerunJob, useRenameSpeaker } from "../api/jobActions";
import { keys, useJob, useSession } from "../api/queries";
import { ACTIVE_STATUSES } from "../api/types";
import type { JobDetail } from "../api/types";
import { hasScope } from "../auth/scopes";
import { ErrorAlert, PageLoader } from "../components/States";
import { StatusBadge } from "../components/StatusBadge";
import { formatBytes, formatDateTime, formatDuration, formatNumber, humanize, secondsBetween } from "../lib/format";
import { useNow } from "../lib/useNow";
import type { EnrichmentDetail } from "../api/enrichment";
import { EnrichmentResults } from "./job/EnrichmentResults";
import { StageTimeline } from "./job/StageTimeline";
import { TranscriptView } from "./job/TranscriptView";
import { Field } from "../components/Field";

function languageText(job: JobDetail): string {
  const t = job.transcript;
  if (t?.language) {
    const p = t.language_probability;
    const how = job.language ? "requested" : p != null ? `detected, p ${formatNumber(p, 2)}` : "detected";
    return `${t.language} (${how})`;
  }
  return job.language ? `${job.language} (requested)` : "detect";
}

const NO_WRITE = "This API key lacks the jobs:write scope.";

function languageOption(job: JobDetail): string {
  return job.language ? job.language : "detect";
}

function RerunButton({ job, canWrite }: { job: JobDetail; canWrite: boolean }) {
  const client = useQueryClient();
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const rerun = useMutation({
    mutationFn: () => rerunJob(job.id),
    onSuccess: (created) => {
      client.setQueryData(keys.job(created.id), created);
      client.invalidateQueries({ queryKey: keys.jobsAll });
      setOpen(false);
      notifications.show({ color: "blue", message: "A new job runs the same audio with the same options." });
      navigate(`/jobs/${created.id}`);
    },
  });
  const close = () => {
    setOpen(false);
    rerun.reset();
  };
  return (
    <>
      <Tooltip label={NO_WRITE} disabled={canWrite}>
        <Button variant="light" size="xs" leftSection={<IconRefresh size={14} />} disabled={!canWrite} onClick={() => setOpen(true)}>
          Re-run
        </Button>
      </Tooltip>
      <Modal opened={open} onClose={close} title="Re-run this job?" centered>
        <Stack gap="sm">
          <Text size="sm">A new job transcribes the stored audio again with the same options. This job stays as it is.</Text>
          <Paper withBorder p="xs">
            <SimpleGrid cols={2} spacing="xs" verticalSpacing={6} data-testid="rerun-parameters">
              <Field label="Audio">{job.audio.filename || "Untitled upload"}</Field>
              <Field label="Duration">{formatDuration(job.audio.duration)}</Field>
              <Field label="Model">
                <span className="mono">{job.model}</span>
              </Field>
              <Field label="Language">{languageOption(job)}</Field>
              <Field label="Speakers">{humanize(job.speaker_detection)}</Field>
              <Field label="Engines">{[...new Set(job.stages.map((st) => st.engine_id))].join(", ") || "server defaults"}</Field>
            </SimpleGrid>
          </Paper>
          {rerun.isError && (
            <Alert color="red" variant="light">
              {errorMessage(rerun.error)}
            </Alert>
          )}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={close}>
              Keep it
            </Button>
            <Button loading={rerun.isPending} onClick={() => rerun.mutate()} data-testid="confirm-rerun">
              Re-run
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}

function Actions({ job }: { job: JobDetail }) {
  const { data: session } = useSession();
  const client = useQueryClient();
  const navigate = useNavigate();
  const [confirm, setConfirm] = useState<"cancel" | "delete" | null>(null);
  const canWrite = hasScope(session, "jobs:write");
  const active = ACTIVE_STATUSES.includes(job.status);

  const cancel = useMutation({
    mutationFn: () => cancelJob(job.id),
    onSuccess: (detail) => {
      client.setQueryData(keys.job(job.id), detail);
      client.invalidateQueries({ queryKey: keys.jobsAll });
      setConfirm(null);
      notifications.show({ color: "orange", message: "The job was cancelled." });
    },
  });
  const remove = useMutation({
    mutationFn: () => deleteJob(job.id),
    onSuccess: () => {
      setConfirm(null);
      client.removeQueries({ queryKey: keys.job(job.id) });
      client.invalidateQueries({ queryKey: keys.jobsAll });
      notifications.show({ color: "gray", message: "The job and its audio and outputs were deleted." });
      navigate("/jobs", { replace: true });
    },
  });
  const pending = confirm === "cancel" ? cancel : remove;

  const noWrite = NO_WRITE;
  return (
    <>
      {!active && <RerunButton job={job} canWrite={canWrite} />}
      {active ? (
        <Tooltip label={noWrite} disabled={canWrite}>
          <Button color="orange" variant="light" size="xs" leftSection={<IconPlayerStop size={14} />} disabled={!canWrite} onClick={() => setConfirm("cancel")}>
            Cancel job
          </Button>
        </Tooltip>
      ) : (
        <Tooltip label={noWrite} disabled={canWrite}>
          <Button color="red" variant="light" size="xs" leftSection={<IconTrash size={14} />} disabled={!canWrite} onClick={() => setConfirm("delete")}>
            Delete
          </Button>
        </Tooltip>
      )}
      <Modal
        opened={confirm !== null}
        onClose={() => {
          setConfirm(null);
          cancel.reset();
          remove.reset();
        }}
        title={confirm === "cancel" ? "Cancel this job?" : "Delete this job?"}
        centered
      >
        <Stack gap="sm">
          <Text size="sm">
            {confirm === "cancel"
              ? "Queued stages will be skipped and the job ends as cancelled. This cannot be undone."
              : "The job, its uploaded audio, stage outputs and transcript are removed for good."}
          </Text>
          <Text size="sm" c="dimmed">
            {job.audio.filename ?? job.id}
          </Text>
          {pending.isError && (
            <Alert color="red" variant="light">
              {errorMessage(pending.error)}
            </Alert>
          )}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={() => setConfirm(null)}>
              Keep it
            </Button>
            <Button color={confirm === "cancel" ? "orange" : "red"} loading={pending.isPending} onClick={() => pending.mutate()} data-testid="confirm-action">
              {confirm === "cancel" ? "Cancel job" : "Delete job"}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}

function Exports({ job }: { job: JobDetail }) {
  return (
    <Group gap={4} wrap="wrap">
      <Text size="xs" c="dimmed" mr={2}>
        Export
      </Text>
      {EXPORT_FORMATS.map((fmt) => (
        <Button
          key={fmt}
          component="a"
          href={paths.exportFile(job.id, fmt)}
          download
          size="compact-xs"
          variant="default"
          leftSection={<IconDownload size={12} />}
          data-export={fmt}
        >
          {fmt}
        </Button>
      ))}
    </Group>
  );
}

function Header({ job, now }: { job: JobDetail; now: number }) {
  const active = ACTIVE_STATUSES.includes(job.status);
  const nowIso = new Date(now).toISOString();
  // Run time counts from the start; a job that has not started shows how long it has been queued.
  const timing = job.started_at
    ? { label: "Run time", seconds: secondsBetween(job.started_at, job.completed_at ?? (active ? nowIso : null)) }
    : { label: active ? "Queued for" : "Run time", seconds: active ? secondsBetween(job.created_at, nowIso) : null };
  return (
    <Stack gap="sm">
      <Group justify="space-between" align="flex-start" wrap="nowrap">
        <Box style={{ minWidth: 0 }}>
          <Group gap="sm" wrap="nowrap">
            <Title order={3} style={{ wordBreak: "break-all" }} data-testid="job-title">
              {job.audio.filename || "Untitled upload"}
            </Title>
            <span data-testid="job-status" data-status={job.status} data-job-id={job.id}>
              <StatusBadge status={job.status} size="md" />
            </span>
          </Group>
          <Group gap={4} mt={2}>
            <Text size="xs" c="dimmed" className="mono">
              {job.id}
            </Text>
            <CopyButton value={job.id}>
              {({ copied, copy }) => (
                <Tooltip label={copied ? "Copied" : "Copy job id"}>
                  <ActionIcon variant="subtle" size="xs" color={copied ? "green" : "gray"} onClick={copy} aria-label="Copy job id">
                    {copied ? <IconCheck size={12} /> : <IconCopy size={12} />}
                  </ActionIcon>
                </Tooltip>
              )}
            </CopyButton>
          </Group>
        </Box>
        <Group gap="xs" wrap="nowrap">
          <Actions job={job} />
        </Group>
      </Group>
      {active && (
        <Group gap="xs" wrap="nowrap">
          <Progress value={job.progress * 100} animated={job.status === "running"} style={{ flex: 1 }} aria-label="job progress" />
          <Text size="xs" c="dimmed" w={40}>
            {Math.round(job.progress * 100)} %
          </Text>
        </Group>
      )}
      <Paper p="sm">
        <SimpleGrid cols={{ base: 2, sm: 3, lg: 6 }} spacing="sm" verticalSpacing="sm">
          <Field label="Duration">{formatDuration(job.audio.duration)}</Field>
          <Field label="Model">
            <span className="mono">{job.model}</span>
          </Field>
          <Field label="Language">{languageText(job)}</Field>
          <Field label="Speakers">
            {humanize(job.speaker_detection)}
            {job.transcript && job.transcript.speakers.length > 0 ? ` · ${job.transcript.speakers.length} found` : ""}
          </Field>
          <Field label="Audio">
            {formatBytes(job.audio.bytes)}
            {job.audio.format ? ` · ${job.audio.format}` : ""} · {job.audio.channels} ch · {job.audio.sample_rate} Hz
          </Field>
          <Field label={timing.label}>{timing.seconds == null ? "—" : formatDuration(timing.seconds)}</Field>
          <Field label="Created">{formatDateTime(job.created_at)}</Field>
          <Field label="Started">{formatDateTime(job.started_at)}</Field>
          <Field label={job.status === "cancelled" ? "Cancelled" : job.status === "failed" ? "Failed" : "Completed"}>{formatDateTime(job.completed_at)}</Field>
          {job.source_session_id && (
            <Field label="Realtime session">
              <span className="mono">{job.source_session_id.slice(0, 8)}</span>
            </Field>
          )}
        </SimpleGrid>
      </Paper>
    </Stack>
  );
}

export default function JobPage() {
  const { id = "" } = useParams();
  const job = useJob(id);
  const { data: session } = useSession();
  const canWrite = hasScope(session, "jobs:write");
  const rename = useRenameSpeaker(id);
  const now = useNow(job.data && ACTIVE_STATUSES.includes(job.data.status) ? 1000 : 60_000);

  if (job.isPending) return <PageLoader label="Loading the job…" />;
  if (!job.data) {
    const notFound = job.error instanceof ApiError && job.error.status === 404;
    return (
      <Stack gap="sm">
        {notFound ? (
          <Alert color="gray" variant="light" icon={<IconInfoCircle size={18} />} title="No such job">
            There is no job {id} for this key's tenant. It may have been deleted.
          </Alert>
        ) : (
          <ErrorAlert error={job.error} />
        )}
        <Anchor component={Link} to="/jobs" size="sm">
          Back to jobs
        </Anchor>
      </Stack>
    );
  }

  const data: JobDetail & EnrichmentDetail = job.data;
  const warnings = [...new Set([...(data.warnings ?? []), ...(data.transcript?.warnings ?? [])])];
  return (
    <Stack gap="md">
      <Header job={data} now={now} />
      {job.isError && <ErrorAlert error={job.error} title="Refreshing failed" />}
      {data.error && (
        <Alert color="red" variant="light" icon={<IconAlertTriangle size={18} />} title={`The job ${data.status === "failed" ? "failed" : "reported an error"}`}>
          <Text size="sm" style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}>
            {data.error}
          </Text>
        </Alert>
      )}
      {warnings.length > 0 && (
        <Alert color="yellow" variant="light" icon={<IconAlertTriangle size={18} />} title={warnings.length === 1 ? "Warning" : `${warnings.length} warnings`}>
          <Stack gap={2}>
            {warnings.map((w) => (
              <Text size="sm" key={w}>
                {w}
              </Text>
            ))}
          </Stack>
        </Alert>
      )}
      <StageTimeline stages={data.stages} now={now} />
      <EnrichmentResults job={data} />
      {data.transcript ? (
        <TranscriptView
          transcript={data.transcript}
          audioSrc={paths.audio(data.id)}
          toolbar={<Exports job={data} />}
          speakerNames={data.speaker_names}
          onRename={canWrite ? (speaker, name) => rename.mutateAsync({ speaker, name }) : null}
          noWriteReason={NO_WRITE}
          entities={data.entities}
        />
      ) : (
        <Paper p="sm">
          <Text fw={600} size="sm" mb={6}>
            Audio
          </Text>
          <audio controls preload="metadata" src={paths.audio(data.id)} style={{ width: "100%", height: 36, display: "block" }} data-testid="player" />
          <Text size="sm" c="dimmed" mt="xs">
            {ACTIVE_STATUSES.includes(data.status) ? "The transcript appears here when the job completes." : "This job has no transcript."}
          </Text>
        </Paper>
      )}
    </Stack>
  );
}
