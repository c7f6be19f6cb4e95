import { Anchor, Button, Checkbox, Group, Paper, Stack, Table, Text, Title } from "@mantine/core";
import { IconChevronRight, IconChevronsLeft, IconFilterOff, IconRefresh } from "@tabler/icons-react";
import { useQueries } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";

import { fetchJob } from "../api/endpoints";
import { useJobList } from "../api/jobList";
import { keys, useSession } from "../api/queries";
import { ACTIVE_STATUSES } from "../api/types";
import type { JobDetail } from "../api/types";
import { hasScope } from "../auth/scopes";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { StatusBadge } from "../components/StatusBadge";
import { pageSelectionState, remainingSelection, toggle, togglePage } from "../lib/bulk";
import type { BulkResult } from "../lib/bulk";
import { formatAgo, formatBytes, formatDateTime, formatDuration, humanize } from "../lib/format";
import { activeFilterCount, filtersFromParams, NO_FILTERS, paramsFromFilters, withFilter } from "../lib/jobFilters";
import type { JobFilters } from "../lib/jobFilters";
import { useNow } from "../lib/useNow";
import { BulkActions } from "./jobs/BulkActions";
import { JobFiltersBar } from "./jobs/JobFiltersBar";
import { ProgressCell } from "./jobs/ProgressCell";
import { latestSearchParams } from "../lib/url";

const PAGE_SIZE = 25;

export default function Jobs() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const now = useNow(10000);
  const session = useSession();
  const canWrite = hasScope(session.data, "jobs:write");
  const filters = filtersFromParams(params);
  const cursor = params.get("cursor");
  const jobs = useJobList(filters, cursor, PAGE_SIZE);
  const rows = useMemo(() => jobs.data?.jobs ?? [], [jobs.data]);
  const [selection, setSelection] = useState<Set<string>>(new Set());

  // A selection belongs to the rows on screen: a new filter or page starts a new one.
  const listKey = params.toString();
  useEffect(() => setSelection(new Set()), [listKey]);

  const active = rows.filter((j) => ACTIVE_STATUSES.includes(j.status));
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

  function setFilter(name: keyof JobFilters, value: string | null, options: { replace?: boolean } = {}) {
    // Any change of filter starts again from the first page.
    setParams(paramsFromFilters(withFilter(filtersFromParams(latestSearchParams()), name, value)), { replace: options.replace });
  }

  function clearFilters() {
    setParams(paramsFromFilters(NO_FILTERS));
  }

  function goNext() {
    if (!jobs.data?.next_cursor) return;
    setParams(paramsFromFilters(filters, jobs.data.next_cursor));
  }

  function goFirst() {
    setParams(paramsFromFilters(filters));
  }

  function finished(results: BulkResult[]) {
    setSelection(new Set(remainingSelection(results)));
  }

  const pageIds = rows.map((j) => j.id);
  const pageState = pageSelectionState(selection, pageIds);
  const selectedJobs = rows.filter((j) => selection.has(j.id));
  const filtered = activeFilterCount(filters) > 0;

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
      <JobFiltersBar filters={filters} modelsInUse={rows.map((j) => j.model)} onChange={setFilter} onClear={clearFilters} />
      {jobs.isError && jobs.data && <ErrorAlert error={jobs.error} title="Refreshing failed" />}
      {jobs.isPending ? (
        <PageLoader />
      ) : !jobs.data ? (
        <ErrorAlert error={jobs.error} />
      ) : (
        <Paper>
          <BulkActions selected={selectedJobs} canWrite={canWrite} onFinished={finished} onClearSelection={() => setSelection(new Set())} />
          <Table.ScrollContainer minWidth={800}>
            <Table highlightOnHover stickyHeader>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th w={40}>
                    <Checkbox
                      aria-label="Select all jobs on this page"
                      checked={pageState === "all"}
                      indeterminate={pageState === "some"}
                      disabled={!canWrite || rows.length === 0}
                      onChange={() => setSelection((s) => togglePage(s, pageIds))}
                      data-testid="select-page"
                    />
                  </Table.Th>
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
                  <Table.Tr
                    key={job.id}
                    className="clickable-row"
                    onClick={() => navigate(`/jobs/${job.id}`)}
                    data-job-id={job.id}
                    bg={selection.has(job.id) ? "var(--mantine-color-default-hover)" : undefined}
                  >
                    <Table.Td onClick={(e) => e.stopPropagation()}>
                      <Checkbox
                        aria-label={`Select ${job.audio.filename || job.id}`}
                        checked={selection.has(job.id)}
                        disabled={!canWrite}
                        onChange={() => setSelection((s) => toggle(s, job.id))}
                        data-testid="select-job"
                      />
                    </Table.Td>
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
          {rows.length === 0 &&
            (filtered ? (
              <Stack align="center" gap="xs" py="md" data-testid="jobs-empty-filtered">
                <Text size="sm" c="dimmed">
                  No jobs match these filters{cursor ? " on this page" : ""}.
                </Text>
                <Button variant="default" size="xs" leftSection={<IconFilterOff size={14} />} onClick={clearFilters}>
                  Clear filters
                </Button>
              </Stack>
            ) : (
              <Empty>{cursor ? "No more jobs." : "No jobs yet. Submit one from New transcription."}</Empty>
            ))}
        </Paper>
      )}
      <Group justify="space-between">
        <Text size="xs" c="dimmed">
          {rows.length > 0 ? `${rows.length} job${rows.length === 1 ? "" : "s"} on this page${filtered ? " matching the filters" : ""}, newest first` : ""}
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
