import { Anchor, Button, Group, Paper, Progress, SegmentedControl, Stack, Table, Text, Title, Tooltip } from "@mantine/core";
import { IconAlertCircle, IconChevronRight, IconChevronsLeft, IconRefresh } from "@tabler/icons-react";
import { useQueries } from "@tanstack/react-query";
import { Link, useNavigate, useSearchParams } from "react-router-dom";

import { fetchJob } from "../api/endpoints";
import { keys, useJobs } from "../api/queries";
import { ACTIVE_STATUSES, JOB_STATUSES } from "../api/types";
import type { JobDetail, JobSummary } from "../api/types";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { StatusBadge } from "../components/StatusBadge";
import { formatAgo, formatBytes, formatDateTime, formatDuration, humanize } from "../lib/format";
import { useNow } from "../lib/useNow";

const PAGE_SIZE = 25;
const FILTERS = [{ value: "all", label: "All" }, ...JOB_STATUSES.map((s) => ({ value: s, label: s }))];

function ProgressCell({ job, detail }: { job: JobSummary; detail: JobDetail | undefined }) {
  if (ACTIVE_STATUSES.includes(job.status)) {
    if (!detail) return <Text size="xs" c="dimmed">…</Text>;
    const pct = Math.round(detail.progress * 100);
    return (
      <Group gap={6} wrap="nowrap">
        <Progress value={pct} w={80} size="sm" animated={job.status === "running"} aria-label="progress" />
        <Text size="xs" c="dimmed" w={32}>
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

export default function Jobs() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const now = useNow(10000);
  const status = params.get("status");
  const cursor = params.get("cursor");
  const query = { status: status && status !== "all" ? status : null, cursor, limit: PAGE_SIZE };
  const jobs = useJobs(query);

  const active = (jobs.data?.jobs ?? []).filter((j) => ACTIVE_STATUSES.includes(j.status)).slice(0, PAGE_SIZE);
  const details = useQueries({
    queries: active.map((j) => ({
      queryKey: keys.job(j.id),
      queryFn: ({ signal }: { signal: AbortSignal }) => fetchJob(j.id, signal),
      refetchInterval: 5000,
      staleTime: 2000,
    })),
  });
  const detailById = new Map<string, JobDetail>();
  details.forEach((d) => {
    if (d.data) detailById.set(d.data.id, d.data);
  });

  function setFilter(value: string) {
    const next = new URLSearchParams();
    if (value !== "all") next.set("status", value);
    setParams(next);
  }

  function goNext() {
    if (!jobs.data?.next_cursor) return;
    const next = new URLSearchParams(params);
    next.set("cursor", jobs.data.next_cursor);
    setParams(next);
  }

  function goFirst() {
    const next = new URLSearchParams(params);
    next.delete("cursor");
    setParams(next);
  }

  const rows = jobs.data?.jobs ?? [];

  return (
    <Stack gap="md">
      <Group justify="space-between" align="center">
        <Title order={3}>Jobs</Title>
        <Group gap="xs">
          <Button variant="default" size="xs" leftSection={<IconRefresh size={14} />} onClick={() => jobs.refetch()} loading={jobs.isFetching && !jobs.isPending}>
            Refresh
          </Button>
          <Button component={Link} to="/new" size="xs">
            New transcription
          </Button>
        </Group>
      </Group>
      <SegmentedControl size="xs" data={FILTERS} value={status ?? "all"} onChange={setFilter} style={{ alignSelf: "flex-start" }} aria-label="Filter by status" />
      {jobs.isError && jobs.data && <ErrorAlert error={jobs.error} title="Refreshing failed" />}
      {jobs.isPending ? (
        <PageLoader />
      ) : !jobs.data ? (
        <ErrorAlert error={jobs.error} />
      ) : (
        <Paper>
          <Table.ScrollContainer minWidth={760}>
            <Table highlightOnHover stickyHeader>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th w={180}>Created</Table.Th>
                  <Table.Th miw={200}>File</Table.Th>
                  <Table.Th w={90} ta="right">
                    Duration
                  </Table.Th>
                  <Table.Th w={110} visibleFrom="md">
                    Model
                  </Table.Th>
                  <Table.Th w={110} visibleFrom="lg">
                    Speakers
                  </Table.Th>
                  <Table.Th w={120}>Status</Table.Th>
                  <Table.Th w={200}>Progress or error</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {rows.map((job) => (
                  <Table.Tr key={job.id} className="clickable-row" onClick={() => navigate(`/jobs/${job.id}`)} data-job-id={job.id}>
                    <Table.Td style={{ whiteSpace: "nowrap" }}>
                      <Text size="sm">{formatDateTime(job.created_at)}</Text>
                      <Text size="xs" c="dimmed">
                        {formatAgo(job.created_at, now)}
                      </Text>
                    </Table.Td>
                    <Table.Td>
                      <Anchor component={Link} to={`/jobs/${job.id}`} size="sm" onClick={(e) => e.stopPropagation()} lineClamp={1} style={{ wordBreak: "break-all" }}>
                        {job.audio.filename || job.id}
                      </Anchor>
                      <Text size="xs" c="dimmed" style={{ whiteSpace: "nowrap" }}>
                        {formatBytes(job.audio.bytes)}
                        {job.audio.format ? ` · ${job.audio.format}` : ""}
                        {job.audio.channels > 1 ? ` · ${job.audio.channels} ch` : ""}
                      </Text>
                    </Table.Td>
                    <Table.Td ta="right">{formatDuration(job.audio.duration)}</Table.Td>
                    <Table.Td className="mono" visibleFrom="md">
                      {job.model}
                    </Table.Td>
                    <Table.Td visibleFrom="lg">{humanize(job.speaker_detection)}</Table.Td>
                    <Table.Td>
                      <StatusBadge status={job.status} />
                    </Table.Td>
                    <Table.Td>
                      <ProgressCell job={job} detail={detailById.get(job.id)} />
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
          {rows.length === 0 && <Empty>{cursor ? "No more jobs." : status && status !== "all" ? `No ${status} jobs.` : "No jobs yet. Submit one from New transcription."}</Empty>}
        </Paper>
      )}
      <Group justify="space-between">
        <Text size="xs" c="dimmed">
          {rows.length > 0 ? `${rows.length} job${rows.length === 1 ? "" : "s"} on this page, newest first` : ""}
        </Text>
        <Group gap="xs">
          <Button variant="default" size="xs" leftSection={<IconChevronsLeft size={14} />} disabled={!cursor} onClick={goFirst}>
            First page
          </Button>
          <Button variant="default" size="xs" rightSection={<IconChevronRight size={14} />} disabled={!jobs.data?.has_more} onClick={goNext}>
            Next page
          </Button>
        </Group>
      </Group>
    </Stack>
  );
}
