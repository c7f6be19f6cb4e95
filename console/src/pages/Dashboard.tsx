import { Anchor, Badge, Box, Group, Paper, Progress, SegmentedControl, SimpleGrid, Stack, Table, Text, Title, Tooltip } from "@mantine/core";
import { IconAlertTriangle } from "@tabler/icons-react";
import { lazy, Suspense, type ReactNode } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { errorMessage } from "../api/client";
import { useOverview, useSession } from "../api/queries";
import { JOB_STATUSES } from "../api/types";
import type { EngineStats, HourBucket, Overview, RealtimeStats, RecentFailure } from "../api/types";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { statusColor } from "../components/StatusBadge";
import { formatAgo, formatDateTime, formatDuration, formatNumber, formatPercent, formatThroughput } from "../lib/format";
import { useNow } from "../lib/useNow";

// recharts is most of the dashboard's weight: the numbers render while it loads.
const HourlyChart = lazy(() => import("./dashboard/HourlyChart"));

function stalled(e: { lag: number | null; pending: number; live_instances: number }): boolean {
  return e.live_instances === 0 && (e.lag ?? 0) + e.pending > 0;
}

function Panel({ title, action, children }: { title: string; action?: ReactNode; children: ReactNode }) {
  return (
    <Paper p="sm">
      <Group justify="space-between" mb="xs">
        <Text fw={600} size="sm">
          {title}
        </Text>
        {action}
      </Group>
      {children}
    </Paper>
  );
}

function StatCard({ label, value, color, to }: { label: string; value: number | null | undefined; color: string; to: string }) {
  return (
    <Paper p="sm" component={Link} to={to} style={{ textDecoration: "none", color: "inherit", borderLeft: `4px solid var(--mantine-color-${color}-filled)` }}>
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <Text fz={26} fw={700} lh={1.2} data-testid={`stat-${label}`}>
        {value ?? "—"}
      </Text>
    </Paper>
  );
}

function Metric({ label, value, hint }: { label: string; value: string; hint: string }) {
  return (
    <Paper p="sm">
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <Text fz={22} fw={700} lh={1.3}>
        {value}
      </Text>
      <Text size="xs" c="dimmed">
        {hint}
      </Text>
    </Paper>
  );
}

function Last24h({ buckets }: { buckets: HourBucket[] }) {
  const anything = buckets.some((b) => b.created || b.completed || b.failed);
  return (
    <Paper p="sm">
      <Group justify="space-between" mb="xs">
        <Text fw={600} size="sm">
          Last 24 hours, per hour
        </Text>
        {!anything && buckets.length > 0 && (
          <Text size="xs" c="dimmed">
            no jobs in the last 24 hours
          </Text>
        )}
      </Group>
      {buckets.length === 0 ? (
        <Empty>The gateway returned no hourly data.</Empty>
      ) : (
        <Suspense fallback={<Box h={220} />}>
          <HourlyChart buckets={buckets} />
        </Suspense>
      )}
    </Paper>
  );
}

function RecentFailures({ failures }: { failures: RecentFailure[] }) {
  return (
    <Panel title="Recent failures">
      {failures.length === 0 ? (
        <Empty>No failed jobs.</Empty>
      ) : (
        <Table.ScrollContainer minWidth={560}>
          <Table highlightOnHover>
            <Table.Thead>
              <Table.Tr>
                <Table.Th w={170}>Failed at</Table.Th>
                <Table.Th>File</Table.Th>
                <Table.Th w={110}>Model</Table.Th>
                <Table.Th>Error</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {failures.map((f) => (
                <Table.Tr key={f.id}>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>{formatDateTime(f.completed_at)}</Table.Td>
                  <Table.Td>
                    <Anchor component={Link} to={`/jobs/${f.id}`} size="sm">
                      {f.filename || f.id.slice(0, 8)}
                    </Anchor>
                  </Table.Td>
                  <Table.Td>{f.model ?? "—"}</Table.Td>
                  <Table.Td>
                    <Text size="sm" lineClamp={2} title={f.error ?? undefined}>
                      {f.error ?? "—"}
                    </Text>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Panel>
  );
}

function Engines({ engines }: { engines: EngineStats[] }) {
  return (
    <Panel
      title="Engine queues"
      action={
        <Anchor component={Link} to="/engines" size="xs">
          Instances and run times: Engines page
        </Anchor>
      }
    >
      {engines.length === 0 ? (
        <Empty>No engine streams exist yet.</Empty>
      ) : (
        <Table.ScrollContainer minWidth={480}>
          <Table>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Engine</Table.Th>
                <Table.Th>Stage</Table.Th>
                <Table.Th ta="right">Stream length</Table.Th>
                <Table.Th ta="right">Pending</Table.Th>
                <Table.Th ta="right">Lag</Table.Th>
                <Table.Th ta="right" title="engine processes heartbeating now, idle or busy">
                  Live instances
                </Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {engines.map((e) => (
                <Table.Tr key={e.engine_id}>
                  <Table.Td className="mono" style={{ whiteSpace: "nowrap" }}>
                    {e.engine_id}
                  </Table.Td>
                  <Table.Td>{e.stage ?? "—"}</Table.Td>
                  <Table.Td ta="right">{e.length}</Table.Td>
                  <Table.Td ta="right">{e.pending}</Table.Td>
                  <Table.Td ta="right">{e.lag ?? "—"}</Table.Td>
                  <Table.Td ta="right" data-testid={`live-instances-${e.engine_id}`}>
                    {/* Red when work waits and no engine process is alive to take it. */}
                    {stalled(e) ? (
                      <Text span size="sm" c="red" fw={700}>
                        0 · no instance running
                      </Text>
                    ) : (
                      e.live_instances
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Panel>
  );
}

function Realtime({ realtime }: { realtime: RealtimeStats }) {
  const used = realtime.capacity > 0 ? (realtime.active_sessions / realtime.capacity) * 100 : 0;
  return (
    <Paper p="sm">
      <Group justify="space-between" mb={6}>
        <Group gap="xs">
          <Text fw={600} size="sm">
            Realtime capacity
          </Text>
          <Badge size="xs" variant="light" color={realtime.status === "available" ? "green" : realtime.status === "full" ? "orange" : "red"}>
            {realtime.status}
          </Badge>
        </Group>
        <Text size="sm" c="dimmed">
          {realtime.active_sessions} active of {realtime.capacity} slots · {realtime.available_slots} free
        </Text>
      </Group>
      {realtime.capacity > 0 ? (
        <Progress value={used} color={used >= 90 ? "red" : used >= 70 ? "yellow" : "blue"} size="lg" aria-label="realtime sessions in use" />
      ) : (
        <Text size="sm" c="dimmed">
          No realtime workers are registered.
        </Text>
      )}
      {realtime.workers.length > 0 && (
        <Table.ScrollContainer minWidth={480} mt="xs">
          <Table>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Worker</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th ta="right">Sessions</Table.Th>
                <Table.Th>Models</Table.Th>
                <Table.Th ta="right">Heartbeat</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {realtime.workers.map((w) => (
                <Table.Tr key={w.id}>
                  <Table.Td className="mono" style={{ whiteSpace: "nowrap" }}>
                    {w.id}
                  </Table.Td>
                  <Table.Td>{w.status}</Table.Td>
                  <Table.Td ta="right">
                    {w.active_sessions} / {w.capacity}
                  </Table.Td>
                  <Table.Td>{w.models?.join(", ") || "—"}</Table.Td>
                  <Table.Td ta="right">{w.heartbeat_age_seconds != null ? `${formatNumber(w.heartbeat_age_seconds, 1)} s ago` : "—"}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Paper>
  );
}

function Body({ data }: { data: Overview }) {
  const finished24h = data.last_24h.reduce((n, b) => n + b.completed + b.failed, 0);
  const audioHours24h = data.last_24h.reduce((n, b) => n + (b.audio_hours_completed ?? 0), 0);
  return (
    <Stack gap="md">
      <SimpleGrid cols={{ base: 2, xs: 3, md: 5 }} spacing="sm">
        {JOB_STATUSES.map((s) => (
          <StatCard key={s} label={s} value={data.jobs_by_status[s] ?? 0} color={statusColor(s)} to={`/jobs?status=${s}`} />
        ))}
      </SimpleGrid>
      <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="sm">
        <Metric label="Throughput" value={formatThroughput(data.throughput_audio_hours_per_hour)} hint={`audio transcribed per hour over the last 24 h (${formatDuration(audioHours24h * 3600)} in all)`} />
        <Metric
          label="Error rate"
          value={formatPercent(data.error_rate)}
          hint={data.error_rate == null ? "no jobs finished in the last 24 h" : `failed of ${finished24h} finished jobs, last 24 h`}
        />
      </SimpleGrid>
      <Last24h buckets={data.last_24h} />
      <RecentFailures failures={data.recent_failures} />
      {data.engines && <Engines engines={data.engines} />}
      {data.realtime && <Realtime realtime={data.realtime} />}
    </Stack>
  );
}

export default function Dashboard() {
  const { data: session } = useSession();
  const admin = session?.scopes.includes("admin") ?? false;
  const [params, setParams] = useSearchParams();
  const ownTenant = !admin || params.get("tenants") === "mine";
  const overview = useOverview(admin && ownTenant ? (session?.tenant_id ?? null) : null);
  const now = useNow(5000);
  const allTenants = overview.data?.tenant_id === null;
  return (
    <Stack gap="md">
      <Group justify="space-between" align="center">
        <Group gap="md" align="center">
          <Title order={3}>Dashboard</Title>
          {admin ? (
            <SegmentedControl
              size="xs"
              value={ownTenant ? "mine" : "all"}
              onChange={(v) => setParams(v === "mine" ? { tenants: "mine" } : {})}
              data={[
                { value: "all", label: "All tenants" },
                { value: "mine", label: `This tenant (${session?.tenant_name ?? "?"})` },
              ]}
              aria-label="Whose jobs to count"
            />
          ) : (
            <Text size="sm" c="dimmed">
              tenant {session?.tenant_name}
            </Text>
          )}
        </Group>
        {overview.dataUpdatedAt > 0 && (
          <Text size="xs" c="dimmed">
            updated {formatAgo(new Date(overview.dataUpdatedAt).toISOString(), now)} · every 5 s
          </Text>
        )}
      </Group>
      {allTenants && (
        <Text size="xs" c="dimmed" mt={-8}>
          Job numbers cover every tenant. The Jobs page lists, and job pages open, only jobs of this key's tenant ({session?.tenant_name}).
        </Text>
      )}
      {overview.isError && overview.data && (
        <Tooltip label={errorMessage(overview.error)}>
          <Group gap={6} c="yellow.7">
            <IconAlertTriangle size={16} />
            <Text size="sm">Refreshing failed; showing the last data received and retrying with backoff.</Text>
          </Group>
        </Tooltip>
      )}
      {overview.isPending ? <PageLoader /> : overview.data ? <Body data={overview.data} /> : <ErrorAlert error={overview.error} />}
    </Stack>
  );
}
