import { Alert, Anchor, Badge, Group, Progress, Stack, Table, Text, Title, Tooltip } from "@mantine/core";
import { IconAlertTriangle } from "@tabler/icons-react";
import { Link } from "react-router-dom";

import { errorMessage } from "../api/client";
import { useEngines, type EngineStatus, type EnginesView } from "../api/engines";
import { useSession } from "../api/queries";
import type { RealtimeStats } from "../api/types";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { engineHealth, formatAge, FULL_BADGE, formatSeconds, heartbeatAge, HEALTH, isFresh, loadPercent, waitingTasks } from "../lib/engines";
import { formatAgo, formatDateTime } from "../lib/format";
import { useNow } from "../lib/useNow";
import { Section } from "../components/Section";

const FULL = FULL_BADGE;
const NOWRAP = { whiteSpace: "nowrap" } as const;

function num(n: number | null | undefined): string {
  return n == null ? "—" : n.toLocaleString();
}

function EngineBadges({ e }: { e: EngineStatus }) {
  return (
    <Group gap={4} mt={2}>
      {e.default_for_stage && (
        <Badge size="xs" variant="light" color="blue">
          default
        </Badge>
      )}
      {e.runs_stages.length > 0 && (
        <Badge size="xs" variant="light" color="grape" title={`runs ${e.runs_stages.join(", ")} in one task`}>
          integrated
        </Badge>
      )}
      {e.word_timestamps && (
        <Badge size="xs" variant="light" color="teal">
          word timestamps
        </Badge>
      )}
      {e.gpu && (
        <Badge size="xs" variant="light" color="orange">
          GPU capable
        </Badge>
      )}
    </Group>
  );
}

function EnginesTable({ view }: { view: EnginesView }) {
  return (
    <Section title="Batch engines" hint={`tasks, run and wait times: last ${view.window_hours} h (tasks table)`}>
      <Table.ScrollContainer minWidth={1100}>
        <Table verticalSpacing={6}>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Engine</Table.Th>
              <Table.Th>Stage</Table.Th>
              <Table.Th>Status</Table.Th>
              <Table.Th ta="right">Instances</Table.Th>
              <Table.Th ta="right" title="tasks not yet delivered to any engine">
                Lag
              </Table.Th>
              <Table.Th ta="right" title="delivered to an engine, not acknowledged yet">
                Pending
              </Table.Th>
              <Table.Th ta="right" title="entries in the stream (acknowledged ones stay until trimmed)">
                Stream
              </Table.Th>
              <Table.Th ta="right">Done</Table.Th>
              <Table.Th ta="right">Failed</Table.Th>
              <Table.Th ta="right" title="completed tasks: started → completed">
                Mean run
              </Table.Th>
              <Table.Th ta="right">p95 run</Table.Th>
              <Table.Th ta="right" title="queued → started">
                Mean wait
              </Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {view.engines.map((e) => {
              const health = engineHealth(e);
              const h = HEALTH[health];
              const s = e.last_24h;
              return (
                <Table.Tr key={e.engine_id} data-engine-id={e.engine_id} data-health={health} data-instances={e.instances.length} data-done={s.completed}>
                  <Table.Td>
                    <Text size="sm" className="mono" fw={600}>
                      {e.engine_id}
                    </Text>
                    <Text size="xs" c="dimmed">
                      {e.summary}
                    </Text>
                    <EngineBadges e={e} />
                  </Table.Td>
                  <Table.Td>{e.stage}</Table.Td>
                  <Table.Td>
                    <Tooltip label={e.unconfigured ?? h.hint} multiline w={260} withArrow>
                      <Badge color={h.color} variant={health === "stalled" ? "filled" : "light"} styles={FULL}>
                        {h.label}
                      </Badge>
                    </Tooltip>
                    {health === "stalled" && (
                      <Text size="xs" c="red" fw={600} mt={2}>
                        {waitingTasks(e)} waiting
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td ta="right" fw={600}>
                    {e.instances.length}
                  </Table.Td>
                  <Table.Td ta="right" c={health === "stalled" && (e.queue?.lag ?? 0) > 0 ? "red" : undefined} fw={health === "stalled" ? 700 : undefined}>
                    {e.queue ? num(e.queue.lag) : "—"}
                  </Table.Td>
                  <Table.Td ta="right">{e.queue ? num(e.queue.pending) : "—"}</Table.Td>
                  <Table.Td ta="right" title={e.queue ? e.queue.stream : "the stream does not exist yet: never used here"}>
                    {e.queue ? num(e.queue.length) : "—"}
                  </Table.Td>
                  <Table.Td ta="right">{num(s.completed)}</Table.Td>
                  <Table.Td ta="right" c={s.failed > 0 ? "red" : undefined}>
                    {num(s.failed)}
                  </Table.Td>
                  <Table.Td ta="right" style={NOWRAP}>
                    {formatSeconds(s.mean_run_seconds)}
                  </Table.Td>
                  <Table.Td ta="right" style={NOWRAP}>
                    {formatSeconds(s.p95_run_seconds)}
                  </Table.Td>
                  <Table.Td ta="right" style={NOWRAP}>
                    {formatSeconds(s.mean_queue_wait_seconds)}
                  </Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Section>
  );
}

function Instances({ view, fetchedAt, now }: { view: EnginesView; fetchedAt: number; now: number }) {
  const rows = view.engines.flatMap((e) => e.instances.map((i) => ({ engine: e.engine_id, i })));
  return (
    <Section title="Live engine instances" hint="each engine process heartbeats every few seconds; a stopped one disappears">
      {rows.length === 0 ? (
        <Empty>No engine process is heartbeating. Start the fleet with `dalston up`.</Empty>
      ) : (
        <Table.ScrollContainer minWidth={900}>
          <Table verticalSpacing={6}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Engine</Table.Th>
                <Table.Th>Instance</Table.Th>
                <Table.Th>Host · pid</Table.Th>
                <Table.Th ta="right">Heartbeat</Table.Th>
                <Table.Th>Current task</Table.Th>
                <Table.Th ta="right" title="since the process started">
                  Done / failed
                </Table.Th>
                <Table.Th ta="right">Started</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {rows.map(({ engine, i }) => {
                const age = heartbeatAge(i.heartbeat_age_seconds, fetchedAt, now);
                const fresh = isFresh(age);
                return (
                  <Table.Tr key={`${engine}/${i.instance_id}`} data-instance-engine={engine} data-heartbeat-age={i.heartbeat_age_seconds}>
                    <Table.Td className="mono">{engine}</Table.Td>
                    <Table.Td className="mono" style={{ wordBreak: "break-all" }}>
                      {i.instance_id}
                    </Table.Td>
                    <Table.Td className="mono">
                      {i.host} · {i.pid}
                    </Table.Td>
                    <Table.Td ta="right" style={{ whiteSpace: "nowrap" }}>
                      <Badge size="sm" variant="light" color={fresh ? "green" : "orange"} styles={FULL} title={`last heartbeat ${formatDateTime(i.last_heartbeat)}`}>
                        {formatAge(age)}
                      </Badge>
                    </Table.Td>
                    <Table.Td>
                      {i.current_task_id ? (
                        <Text size="sm">
                          <span className="mono">{i.current_task_id.slice(0, 8)}</span>{" "}
                          <Text span size="xs" c="dimmed">
                            started {formatAgo(i.current_task_started_at, now)}
                          </Text>
                        </Text>
                      ) : (
                        <Text size="sm" c="dimmed">
                          idle
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td ta="right">
                      {num(i.tasks_done)} /{" "}
                      <Text span size="sm" c={i.tasks_failed > 0 ? "red" : undefined}>
                        {num(i.tasks_failed)}
                      </Text>
                    </Table.Td>
                    <Table.Td ta="right" style={NOWRAP}>
                      {formatAgo(i.started_at, now)}
                    </Table.Td>
                  </Table.Tr>
                );
              })}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Section>
  );
}

function RealtimeWorkers({ realtime, fetchedAt, now }: { realtime: RealtimeStats; fetchedAt: number; now: number }) {
  return (
    <Section title="Realtime workers" hint={`${realtime.active_sessions} of ${realtime.capacity} session slots in use · pool ${realtime.status}`}>
      {realtime.workers.length === 0 ? (
        <Empty>No realtime worker is registered.</Empty>
      ) : (
        <Table.ScrollContainer minWidth={760}>
          <Table verticalSpacing={6}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Worker</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th ta="right">Sessions</Table.Th>
                <Table.Th w={180}>Load</Table.Th>
                <Table.Th>Models</Table.Th>
                <Table.Th ta="right">Heartbeat</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {realtime.workers.map((w) => {
                const load = loadPercent(w.active_sessions, w.capacity);
                const age = w.heartbeat_age_seconds == null ? null : heartbeatAge(w.heartbeat_age_seconds, fetchedAt, now);
                return (
                  <Table.Tr key={w.id} data-worker-id={w.id}>
                    <Table.Td className="mono">{w.id}</Table.Td>
                    <Table.Td>
                      <Badge size="sm" variant="light" color={w.status === "ready" ? "green" : "orange"} styles={FULL}>
                        {w.status}
                      </Badge>
                    </Table.Td>
                    <Table.Td ta="right">
                      {w.active_sessions} / {w.capacity}
                    </Table.Td>
                    <Table.Td>
                      <Group gap={6} wrap="nowrap">
                        <Progress value={load} color={load >= 90 ? "red" : load >= 70 ? "yellow" : "blue"} style={{ flex: 1 }} aria-label={`load of ${w.id}`} />
                        <Text size="xs" w={36} ta="right">
                          {load} %
                        </Text>
                      </Group>
                    </Table.Td>
                    <Table.Td className="mono">{w.models?.join(", ") || "—"}</Table.Td>
                    <Table.Td ta="right">
                      <Badge size="sm" variant="light" color={isFresh(age) ? "green" : "orange"} styles={FULL}>
                        {formatAge(age)}
                      </Badge>
                    </Table.Td>
                  </Table.Tr>
                );
              })}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Section>
  );
}

/** The page below its header, for a given answer (exported for its component test). */
export function EnginesBody({ view, fetchedAt, now }: { view: EnginesView; fetchedAt: number; now: number }) {
  const stalled = view.engines.filter((e) => engineHealth(e) === "stalled");
  return (
    <Stack gap="md">
      {stalled.length > 0 && (
        <Alert color="red" variant="light" icon={<IconAlertTriangle size={18} />} title="Work is queued for engines with no instance running" data-testid="stalled-alert">
          {stalled.map((e) => `${e.engine_id} (${waitingTasks(e)} waiting)`).join(", ")}. Start the engine, or its tasks fail once
          DALSTON_ENGINE_UNAVAILABLE_AFTER_S passes.
        </Alert>
      )}
      <EnginesTable view={view} />
      <Instances view={view} fetchedAt={fetchedAt} now={now} />
      <RealtimeWorkers realtime={view.realtime} fetchedAt={fetchedAt} now={now} />
    </Stack>
  );
}

export default function Engines() {
  const { data: session } = useSession();
  const admin = session?.scopes.includes("admin") ?? false;
  const engines = useEngines(admin);
  const now = useNow(1000);
  if (session && !admin) return <ErrorAlert title="Admins only" error={new Error("The engines page needs a key with the admin scope.")} />;
  return (
    <Stack gap="md">
      <Group justify="space-between" align="center">
        <Group gap="md" align="baseline">
          <Title order={3}>Engines</Title>
          <Anchor component={Link} to="/models" size="sm">
            Models
          </Anchor>
        </Group>
        {engines.dataUpdatedAt > 0 && (
          <Text size="xs" c="dimmed">
            updated {formatAgo(new Date(engines.dataUpdatedAt).toISOString(), now)} · every 5 s
          </Text>
        )}
      </Group>
      {engines.isError && engines.data && (
        <Tooltip label={errorMessage(engines.error)}>
          <Group gap={6} c="yellow.7">
            <IconAlertTriangle size={16} />
            <Text size="sm">Refreshing failed; showing the last data received and retrying with backoff.</Text>
          </Group>
        </Tooltip>
      )}
      {engines.isPending ? <PageLoader /> : engines.data ? <EnginesBody view={engines.data} fetchedAt={engines.dataUpdatedAt} now={now} /> : <ErrorAlert error={engines.error} />}
    </Stack>
  );
}
