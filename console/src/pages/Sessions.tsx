import { Anchor, Button, Group, Paper, SegmentedControl, Stack, Table, Text, Title } from "@mantine/core";
import { IconChevronRight, IconChevronsLeft, IconMicrophone, IconRefresh } from "@tabler/icons-react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";

import { SESSION_STATUSES, useRealtimeSessions } from "../api/sessions";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { SessionStatusBadge } from "../components/SessionStatusBadge";
import { formatAgo, formatBytes, formatDateTime } from "../lib/format";
import { formatCount, hasRecording, protocolLabel, sessionDuration } from "../lib/sessions";
import { useNow } from "../lib/useNow";
import { latestSearchParams } from "../lib/url";

const PAGE_SIZE = 25;
const FILTERS = [{ value: "all", label: "All" }, ...SESSION_STATUSES.map((s) => ({ value: s, label: s }))];

export default function Sessions() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const now = useNow(10000);
  const status = params.get("status");
  const cursor = params.get("cursor");
  const sessions = useRealtimeSessions({ status: status && status !== "all" ? status : null, cursor, limit: PAGE_SIZE });

  function setFilter(value: string) {
    const next = new URLSearchParams();
    if (value !== "all") next.set("status", value);
    setParams(next);
  }

  function goNext() {
    if (!sessions.data?.next_cursor) return;
    const next = latestSearchParams();
    next.set("cursor", sessions.data.next_cursor);
    setParams(next);
  }

  function goFirst() {
    const next = latestSearchParams();
    next.delete("cursor");
    setParams(next);
  }

  const rows = sessions.data?.sessions ?? [];

  return (
    <Stack gap="md">
      <Group justify="space-between" align="center">
        <Title order={3}>Realtime sessions</Title>
        <Group gap="xs">
          <Button component={Link} to="/live" size="xs" leftSection={<IconMicrophone size={14} />}>
            Start live transcription
          </Button>
          <Button variant="default" size="xs" leftSection={<IconRefresh size={14} />} onClick={() => sessions.refetch()} loading={sessions.isFetching && !sessions.isPending}>
            Refresh
          </Button>
        </Group>
      </Group>
      <SegmentedControl size="xs" data={FILTERS} value={status ?? "all"} onChange={setFilter} style={{ alignSelf: "flex-start" }} aria-label="Filter by status" />
      {sessions.isError && sessions.data && <ErrorAlert error={sessions.error} title="Refreshing failed" />}
      {sessions.isPending ? (
        <PageLoader />
      ) : !sessions.data ? (
        <ErrorAlert error={sessions.error} />
      ) : (
        <Paper>
          <Table.ScrollContainer minWidth={760}>
            <Table highlightOnHover stickyHeader>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th w={180}>Started</Table.Th>
                  <Table.Th w={110}>Protocol</Table.Th>
                  <Table.Th miw={120}>Model</Table.Th>
                  <Table.Th w={120}>Status</Table.Th>
                  <Table.Th w={110} ta="right">
                    Duration
                  </Table.Th>
                  <Table.Th w={100} ta="right">
                    Words
                  </Table.Th>
                  <Table.Th w={140}>Recording</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {rows.map((s) => (
                  <Table.Tr key={s.id} className="clickable-row" onClick={() => navigate(`/sessions/${s.id}`)} data-session-id={s.id}>
                    <Table.Td style={{ whiteSpace: "nowrap" }}>
                      <Anchor component={Link} to={`/sessions/${s.id}`} size="sm" onClick={(e) => e.stopPropagation()}>
                        {formatDateTime(s.started_at)}
                      </Anchor>
                      <Text size="xs" c="dimmed">
                        {formatAgo(s.started_at, now)}
                      </Text>
                    </Table.Td>
                    <Table.Td>{protocolLabel(s.protocol)}</Table.Td>
                    <Table.Td className="mono">{s.model}</Table.Td>
                    <Table.Td>
                      <SessionStatusBadge status={s.status} />
                    </Table.Td>
                    <Table.Td ta="right" style={{ whiteSpace: "nowrap" }}>
                      {sessionDuration(s)}
                    </Table.Td>
                    <Table.Td ta="right">{s.word_count.toLocaleString("en-US")}</Table.Td>
                    <Table.Td>
                      {hasRecording(s) ? (
                        <Text size="sm">yes · {formatBytes(s.recording_bytes)}</Text>
                      ) : (
                        <Text size="sm" c="dimmed">
                          {s.retain_audio ? "no" : "no (not retained)"}
                        </Text>
                      )}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
          {rows.length === 0 && (
            <Empty>
              {cursor ? "No more sessions." : status && status !== "all" ? `No ${status} sessions.` : "No realtime sessions yet. Stream audio to /v1/audio/transcriptions/stream to start one."}
            </Empty>
          )}
        </Paper>
      )}
      <Group justify="space-between">
        <Text size="xs" c="dimmed">
          {rows.length > 0 ? `${formatCount(rows.length, "session")} on this page, newest first` : ""}
        </Text>
        <Group gap="xs">
          <Button variant="default" size="xs" leftSection={<IconChevronsLeft size={14} />} disabled={!cursor} onClick={goFirst}>
            First page
          </Button>
          <Button variant="default" size="xs" rightSection={<IconChevronRight size={14} />} disabled={!sessions.data?.has_more} onClick={goNext}>
            Next page
          </Button>
        </Group>
      </Group>
    </Stack>
  );
}
