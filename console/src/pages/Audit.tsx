import { Anchor, Badge, Button, Group, Paper, SegmentedControl, Select, Stack, Table, Text, Title, Tooltip } from "@mantine/core";
import { IconChevronRight, IconChevronsLeft, IconFilterOff, IconRefresh } from "@tabler/icons-react";
import { useMemo } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { useAudit, type AuditEvent } from "../api/audit";
import { useKeys } from "../api/keys";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { latestSearchParams } from "../lib/url";
import { actionColor, AUDIT_ACTIONS, AUDIT_RANGES, detailEntries, filtersFromParams, outcomeColor, resourceLink, shortId, sinceFor } from "../lib/audit";
import { formatAgo, formatDateTime } from "../lib/format";
import { formatCount } from "../lib/sessions";
import { useNow } from "../lib/useNow";

const PAGE_SIZE = 50;
const OUTCOMES = [
  { value: "all", label: "All" },
  { value: "success", label: "success" },
  { value: "failure", label: "failure" },
];
const ACTIONS = AUDIT_ACTIONS.map((a) => ({ value: a, label: a }));
const RANGES = [{ value: "all", label: "All time" }, ...Object.entries(AUDIT_RANGES).map(([value, r]) => ({ value, label: r.label }))];
// Badges show their whole text (Mantine cuts a badge label with an ellipsis when the cell is narrow).
const FULL_LABEL = { root: { overflow: "visible", maxWidth: "none" }, label: { overflow: "visible" } };
const ID_FILTERS = [
  { name: "actor_key_id", label: "actor key" },
  { name: "tenant_id", label: "tenant" },
  { name: "resource_id", label: "resource" },
] as const;

function Details({ details }: { details: AuditEvent["details"] }) {
  const entries = detailEntries(details);
  if (entries.length === 0) return <Text size="xs" c="dimmed">—</Text>;
  return (
    <Stack gap={0}>
      {entries.map(([k, v]) => (
        <Text key={k} size="xs" style={{ wordBreak: "break-all" }}>
          <Text span size="xs" c="dimmed">
            {k}:
          </Text>{" "}
          <span className="mono">{v}</span>
        </Text>
      ))}
    </Stack>
  );
}

export default function Audit() {
  const [params, setParams] = useSearchParams();
  const now = useNow(30000);
  const f = filtersFromParams(params);
  // The range's `since` is fixed when the range is chosen, so the query key stays put.
  const since = useMemo(() => sinceFor(f.range, Date.now()), [f.range]);
  const audit = useAudit({ ...f, since, limit: PAGE_SIZE });
  const keys = useKeys(true);

  const keyById = useMemo(() => new Map((keys.data?.keys ?? []).map((k) => [k.id, k])), [keys.data]);
  const tenantById = useMemo(() => new Map((keys.data?.keys ?? []).map((k) => [k.tenant.id, k.tenant.name])), [keys.data]);

  function setFilter(name: string, value: string | null) {
    const next = latestSearchParams();
    if (value && value !== "all") next.set(name, value);
    else next.delete(name);
    next.delete("cursor");
    setParams(next);
  }

  function clearFilters() {
    setParams(new URLSearchParams());
  }

  function goNext() {
    if (!audit.data?.next_cursor) return;
    const next = latestSearchParams();
    next.set("cursor", audit.data.next_cursor);
    setParams(next);
  }

  function goFirst() {
    const next = latestSearchParams();
    next.delete("cursor");
    setParams(next);
  }

  const rows = audit.data?.events ?? [];
  const filtered = Boolean(f.action || f.outcome || f.range || f.tenant_id || f.actor_key_id || f.resource_id);

  return (
    <Stack gap="md">
      <Group justify="space-between" align="center">
        <Title order={3}>Audit log</Title>
        <Button variant="default" size="xs" leftSection={<IconRefresh size={14} />} onClick={() => audit.refetch()} loading={audit.isFetching && !audit.isPending}>
          Refresh
        </Button>
      </Group>
      <Group gap="sm" align="flex-end" wrap="wrap">
        <Select
          size="xs"
          label="Action"
          placeholder="All actions"
          data={ACTIONS}
          value={f.action}
          onChange={(v) => setFilter("action", v)}
          clearable
          searchable
          w={220}
          data-testid="audit-action-filter"
        />
        <Select size="xs" label="Time" data={RANGES} value={f.range ?? "all"} onChange={(v) => setFilter("range", v)} allowDeselect={false} w={160} data-testid="audit-range-filter" />
        <Stack gap={2}>
          <Text size="xs" fw={500}>
            Outcome
          </Text>
          <SegmentedControl size="xs" data={OUTCOMES} value={f.outcome ?? "all"} onChange={(v) => setFilter("outcome", v)} aria-label="Filter by outcome" />
        </Stack>
        {ID_FILTERS.filter((x) => f[x.name]).map((x) => (
          <Badge key={x.name} variant="light" color="gray" size="lg" style={{ textTransform: "none" }} rightSection={
            <Anchor component="button" size="xs" onClick={() => setFilter(x.name, null)} aria-label={`Remove the ${x.label} filter`}>
              ×
            </Anchor>
          }>
            {x.label} {shortId(f[x.name])}
          </Badge>
        ))}
        {filtered && (
          <Button variant="subtle" size="xs" leftSection={<IconFilterOff size={14} />} onClick={clearFilters}>
            Clear filters
          </Button>
        )}
      </Group>
      {audit.isError && audit.data && <ErrorAlert error={audit.error} title="Refreshing failed" />}
      {audit.isPending ? (
        <PageLoader />
      ) : !audit.data ? (
        <ErrorAlert error={audit.error} />
      ) : (
        <Paper>
          <Table.ScrollContainer minWidth={1100}>
            <Table highlightOnHover stickyHeader verticalSpacing="xs" data-testid="audit-table">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th w={170}>Time</Table.Th>
                  <Table.Th w={190}>Action</Table.Th>
                  <Table.Th w={110}>Outcome</Table.Th>
                  <Table.Th w={140}>Actor key</Table.Th>
                  <Table.Th w={120}>Tenant</Table.Th>
                  <Table.Th w={170}>Resource</Table.Th>
                  <Table.Th w={150}>IP / request</Table.Th>
                  <Table.Th miw={220}>Details</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {rows.map((e) => {
                  const actor = e.actor_key_id ? keyById.get(e.actor_key_id) : undefined;
                  const link = resourceLink(e.resource_type, e.resource_id);
                  const tenantName = e.tenant_id ? tenantById.get(e.tenant_id) : undefined;
                  return (
                    <Table.Tr key={e.id} data-audit-id={e.id} data-action={e.action} data-outcome={e.outcome}>
                      <Table.Td style={{ whiteSpace: "nowrap" }}>
                        <Text size="sm">{formatDateTime(e.created_at)}</Text>
                        <Text size="xs" c="dimmed">
                          {formatAgo(e.created_at, now)}
                        </Text>
                      </Table.Td>
                      <Table.Td style={{ whiteSpace: "nowrap" }}>
                        <Badge variant="light" color={actionColor(e.action)} style={{ textTransform: "none" }} styles={FULL_LABEL} data-testid="audit-action">
                          {e.action}
                        </Badge>
                      </Table.Td>
                      <Table.Td style={{ whiteSpace: "nowrap" }}>
                        <Badge variant="dot" color={outcomeColor(e.outcome)} style={{ textTransform: "none" }} styles={FULL_LABEL} data-testid="audit-outcome">
                          {e.outcome}
                        </Badge>
                      </Table.Td>
                      <Table.Td>
                        {e.actor_key_id ? (
                          <Tooltip label={`${actor?.name ? `${actor.name} · ` : ""}${e.actor_key_id} (click to filter)`} withArrow>
                            <Anchor component="button" size="sm" className="mono" onClick={() => setFilter("actor_key_id", e.actor_key_id)}>
                              {actor ? `${actor.prefix}…` : shortId(e.actor_key_id)}
                            </Anchor>
                          </Tooltip>
                        ) : (
                          <Text size="sm" c="dimmed">
                            none
                          </Text>
                        )}
                      </Table.Td>
                      <Table.Td>
                        {e.tenant_id ? (
                          <Tooltip label={`${e.tenant_id} (click to filter)`} withArrow>
                            <Anchor component="button" size="sm" onClick={() => setFilter("tenant_id", e.tenant_id)}>
                              {tenantName ?? shortId(e.tenant_id)}
                            </Anchor>
                          </Tooltip>
                        ) : (
                          <Text size="sm" c="dimmed">
                            —
                          </Text>
                        )}
                      </Table.Td>
                      <Table.Td>
                        {e.resource_type || e.resource_id ? (
                          <>
                            <Text size="xs" c="dimmed">
                              {e.resource_type ?? "—"}
                            </Text>
                            {e.resource_id &&
                              (link ? (
                                <Anchor component={Link} to={link} size="sm" className="mono">
                                  {shortId(e.resource_id)}
                                </Anchor>
                              ) : (
                                <Tooltip label={e.resource_id} withArrow>
                                  <Text size="sm" className="mono">
                                    {shortId(e.resource_id)}
                                  </Text>
                                </Tooltip>
                              ))}
                          </>
                        ) : (
                          <Text size="sm" c="dimmed">
                            —
                          </Text>
                        )}
                      </Table.Td>
                      <Table.Td>
                        <Text size="sm" className="mono">
                          {e.client_ip ?? "—"}
                        </Text>
                        {e.request_id && (
                          <Tooltip label={`request ${e.request_id}`} withArrow>
                            <Text size="xs" c="dimmed" className="mono">
                              {shortId(e.request_id)}
                            </Text>
                          </Tooltip>
                        )}
                      </Table.Td>
                      <Table.Td>
                        <Details details={e.details} />
                      </Table.Td>
                    </Table.Tr>
                  );
                })}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
          {rows.length === 0 && <Empty>{f.cursor ? "No more events." : filtered ? "No events match these filters." : "No audit events yet."}</Empty>}
        </Paper>
      )}
      <Group justify="space-between">
        <Text size="xs" c="dimmed">
          {rows.length > 0 ? `${formatCount(rows.length, "event")} on this page, newest first` : ""}
        </Text>
        <Group gap="xs">
          <Button variant="default" size="xs" leftSection={<IconChevronsLeft size={14} />} disabled={!f.cursor} onClick={goFirst}>
            First page
          </Button>
          <Button variant="default" size="xs" rightSection={<IconChevronRight size={14} />} disabled={!audit.data?.next_cursor} onClick={goNext}>
            Next page
          </Button>
        </Group>
      </Group>
    </Stack>
  );
}
