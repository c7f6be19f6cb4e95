import { Box, Paper, Table, Text, Tooltip } from "@mantine/core";

import type { Stage } from "../../api/types";
import { Empty } from "../../components/States";
import { StatusBadge, statusColor } from "../../components/StatusBadge";
import { formatDateTime, formatMs } from "../../lib/format";
import { queueWaitMs } from "./stats";

interface Span {
  left: number;
  width: number;
}

/** Where each stage's bar sits on a shared time axis from the first start to the last end (or now). */
export function stageSpans(stages: Stage[], now: number): (Span | null)[] {
  const starts = stages.map((s) => (s.started_at ? Date.parse(s.started_at) : NaN));
  const ends = stages.map((s, i) => (s.completed_at ? Date.parse(s.completed_at) : Number.isFinite(starts[i]) && s.status === "running" ? now : NaN));
  const known = starts.filter(Number.isFinite);
  if (known.length === 0) return stages.map(() => null);
  const t0 = Math.min(...known);
  const t1 = Math.max(t0 + 1, ...ends.filter(Number.isFinite), ...known);
  return stages.map((_, i) => {
    const a = starts[i] as number;
    const b = ends[i] as number;
    if (!Number.isFinite(a)) return null;
    const end = Number.isFinite(b) ? b : a;
    const left = ((a - t0) / (t1 - t0)) * 100;
    const width = Math.max(0.8, ((end - a) / (t1 - t0)) * 100);
    return { left, width: Math.min(width, 100 - left) };
  });
}

export function StageTimeline({ stages, now }: { stages: Stage[]; now: number }) {
  const spans = stageSpans(stages, now);
  return (
    <Paper p="sm">
      <Text fw={600} size="sm" mb="xs">
        Stages
      </Text>
      {stages.length === 0 ? (
        <Empty>No stages yet: the orchestrator has not planned this job.</Empty>
      ) : (
        <Table.ScrollContainer minWidth={620}>
          <Table>
            <Table.Thead>
              <Table.Tr>
                <Table.Th w={130}>Stage</Table.Th>
                <Table.Th w={150}>Engine</Table.Th>
                <Table.Th w={110}>Status</Table.Th>
                <Table.Th w={70} ta="right" title="the task's attempt counter: 0 on the first try, +1 per retry">
                  Retries
                </Table.Th>
                <Table.Th w={90} ta="right" style={{ whiteSpace: "nowrap" }} title="from being queued on its engine's stream to an engine taking it">
                  Queue wait
                </Table.Th>
                <Table.Th w={90} ta="right" style={{ whiteSpace: "nowrap" }}>
                  Run time
                </Table.Th>
                <Table.Th visibleFrom="md">Timeline</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {stages.map((s, i) => {
                const span = spans[i];
                const runMs = s.duration_ms ?? (s.started_at && s.status === "running" ? now - Date.parse(s.started_at) : null);
                return [
                  <Table.Tr key={s.name} data-stage={s.name}>
                    <Table.Td>
                      <Text size="sm" fw={500}>
                        {s.name}
                      </Text>
                      {s.stage !== s.name && (
                        <Text size="xs" c="dimmed">
                          {s.stage}
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td className="mono" fz="sm" style={{ whiteSpace: "nowrap" }}>
                      {s.engine_id}
                    </Table.Td>
                    <Table.Td>
                      <StatusBadge status={s.status} size="xs" />
                    </Table.Td>
                    <Table.Td ta="right">{s.attempt}</Table.Td>
                    <Table.Td ta="right" data-queue-wait>
                      {formatMs(queueWaitMs(s, now))}
                    </Table.Td>
                    <Table.Td ta="right">{formatMs(runMs)}</Table.Td>
                    <Table.Td visibleFrom="md">
                      <Box pos="relative" h={12} style={{ background: "var(--mantine-color-default-hover)", borderRadius: 3 }}>
                        {span && (
                          <Tooltip label={`${formatDateTime(s.started_at)} → ${s.completed_at ? formatDateTime(s.completed_at) : "…"}`} withArrow>
                            <Box
                              pos="absolute"
                              top={0}
                              h={12}
                              style={{
                                left: `${span.left}%`,
                                width: `${span.width}%`,
                                borderRadius: 3,
                                background: `var(--mantine-color-${statusColor(s.status)}-filled)`,
                                opacity: s.status === "running" ? 0.7 : 1,
                              }}
                            />
                          </Tooltip>
                        )}
                      </Box>
                    </Table.Td>
                  </Table.Tr>,
                  s.error ? (
                    <Table.Tr key={`${s.name}-error`}>
                      <Table.Td colSpan={7} pt={0}>
                        <Text size="xs" c="red" style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}>
                          {s.error}
                        </Text>
                      </Table.Td>
                    </Table.Tr>
                  ) : null,
                ];
              })}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Paper>
  );
}
