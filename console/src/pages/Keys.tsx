import {
  Alert,
  Badge,
  Button,
  Checkbox,
  Group,
  Modal,
  Paper,
  Select,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
  Title,
  Tooltip,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconAlertTriangle, IconKey, IconPlus, IconRefresh, IconTrash } from "@tabler/icons-react";
import { useState } from "react";
import type { FormEvent } from "react";

import { errorMessage } from "../api/client";
import { useCreateKey, useKeys, useRevokeKey } from "../api/keys";
import type { ApiKeyCreated, ApiKeyInfo } from "../api/keys";
import { useSession } from "../api/queries";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { formatAgo, formatDateTime } from "../lib/format";
import {
  EXPIRY_OPTIONS,
  KEY_SCOPES,
  KEY_STATUS_COLORS,
  SCOPE_HELP,
  expiryPreview,
  keyCreateBody,
  keyStatus,
  revokeBlockedReason,
  sortKeys,
  validateKeyForm,
} from "../lib/keys";
import type { KeyForm } from "../lib/keys";
import { useNow } from "../lib/useNow";
import { SecretOnceModal } from "../components/SecretOnceModal";

const EMPTY_FORM: KeyForm = { name: "", scopes: ["jobs:read"], tenant: "", createTenant: false, expiry: "never" };
const NO_TRUNCATION = { label: { overflow: "visible" } };

function NewKeyModal({ opened, onClose, onCreated }: { opened: boolean; onClose: () => void; onCreated: (key: ApiKeyCreated) => void }) {
  const [form, setForm] = useState<KeyForm>(EMPTY_FORM);
  const [touched, setTouched] = useState(false);
  const create = useCreateKey();
  const errors = validateKeyForm(form);
  const shown = touched ? errors : {};
  const expires = expiryPreview(form.expiry);

  function close() {
    setForm(EMPTY_FORM);
    setTouched(false);
    create.reset();
    onClose();
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    setTouched(true);
    if (Object.keys(errors).length > 0) return;
    create.mutate(keyCreateBody(form), {
      onSuccess: (created) => {
        onCreated(created);
        close(); // forgets the answer (it holds the secret) and the form
      },
    });
  }

  return (
    <Modal opened={opened} onClose={close} title="New API key" centered size="lg">
      <form onSubmit={submit} noValidate>
        <Stack gap="sm">
          <TextInput
            label="Name"
            description="What the key is for, e.g. 'ci' or 'team-a browser app'"
            value={form.name}
            onChange={(e) => setForm({ ...form, name: e.currentTarget.value })}
            error={shown.name}
            maxLength={200}
            data-autofocus
            required
          />
          <Checkbox.Group
            label="Scopes"
            description="What the key may do"
            value={form.scopes}
            onChange={(scopes) => setForm({ ...form, scopes })}
            error={shown.scopes}
            required
          >
            <Stack gap={6} mt={6}>
              {KEY_SCOPES.map((scope) => (
                <Checkbox key={scope} value={scope} label={<Text size="sm" ff="monospace" span>{scope}</Text>} description={SCOPE_HELP[scope]} />
              ))}
            </Stack>
          </Checkbox.Group>
          <TextInput
            label="Tenant"
            description="Tenant name; leave empty for your own tenant"
            placeholder="your tenant"
            value={form.tenant}
            onChange={(e) => setForm({ ...form, tenant: e.currentTarget.value })}
            error={shown.tenant}
          />
          {form.tenant.trim() !== "" && (
            <Checkbox
              label="Create this tenant if it does not exist yet"
              checked={form.createTenant}
              onChange={(e) => setForm({ ...form, createTenant: e.currentTarget.checked })}
            />
          )}
          <Select
            label="Expires"
            data={EXPIRY_OPTIONS.map((o) => ({ value: o.value, label: o.label }))}
            value={form.expiry}
            onChange={(value) => setForm({ ...form, expiry: value ?? "never" })}
            allowDeselect={false}
            description={expires ? `About ${formatDateTime(expires.toISOString())} (local time)` : "The key works until it is revoked"}
          />
          {create.isError && (
            <Alert color="red" variant="light" data-testid="create-key-error">
              {errorMessage(create.error)}
            </Alert>
          )}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending} leftSection={<IconKey size={14} />}>
              Create key
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

function SecretModal({ created, onClose }: { created: ApiKeyCreated | null; onClose: () => void }) {
  return (
    <SecretOnceModal
      secret={created?.key ?? null}
      title="Your new API key"
      warning="Dalston keeps only a hash of the key. Once this window is closed, nobody can see it again; if it is lost, revoke it and create a new one."
      summary={
        created && (
          <Text size="sm">
            <b>{created.name}</b> · tenant {created.tenant.name} · {created.scopes.join(", ")}
          </Text>
        )
      }
      copyLabel="Copy the key"
      testId="new-key-secret"
      onClose={onClose}
    />
  );
}

function RevokeModal({ target, onClose }: { target: ApiKeyInfo | null; onClose: () => void }) {
  const revoke = useRevokeKey();

  function close() {
    revoke.reset();
    onClose();
  }

  return (
    <Modal opened={target !== null} onClose={close} title="Revoke this key?" centered>
      {target && (
        <Stack gap="sm">
          <Text size="sm">The key, and every token it issued, stops working at once. This cannot be undone.</Text>
          <Text size="sm" c="dimmed">
            {target.name} · <span className="mono">{target.prefix}…</span> · tenant {target.tenant.name}
          </Text>
          {revoke.isError && (
            <Alert color="red" variant="light">
              {errorMessage(revoke.error)}
            </Alert>
          )}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={close}>
              Keep it
            </Button>
            <Button
              color="red"
              loading={revoke.isPending}
              data-testid="confirm-revoke"
              onClick={() =>
                revoke.mutate(target.id, {
                  onSuccess: (key) => {
                    notifications.show({ color: "gray", message: `The key "${key.name}" was revoked.` });
                    close();
                  },
                })
              }
            >
              Revoke key
            </Button>
          </Group>
        </Stack>
      )}
    </Modal>
  );
}

export default function Keys() {
  const { data: session } = useSession();
  const isAdmin = session?.scopes.includes("admin") ?? false;
  const [includeRevoked, setIncludeRevoked] = useState(true);
  const keysQuery = useKeys(includeRevoked, isAdmin);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);
  const [revoking, setRevoking] = useState<ApiKeyInfo | null>(null);
  const now = useNow(30000);

  if (session && !isAdmin) {
    return (
      <Stack gap="md">
        <Title order={3}>API keys</Title>
        <Alert color="yellow" variant="light" icon={<IconAlertTriangle size={18} />} title="Not allowed">
          Managing API keys needs the admin scope, which this session's key does not have.
        </Alert>
      </Stack>
    );
  }

  const rows = sortKeys(keysQuery.data?.keys ?? []);

  return (
    <Stack gap="md">
      <Group justify="space-between" align="center">
        <Title order={3}>API keys</Title>
        <Group gap="xs">
          <Switch size="xs" label="Show revoked" checked={includeRevoked} onChange={(e) => setIncludeRevoked(e.currentTarget.checked)} />
          <Button
            variant="default"
            size="xs"
            leftSection={<IconRefresh size={14} />}
            onClick={() => keysQuery.refetch()}
            loading={keysQuery.isFetching && !keysQuery.isPending}
          >
            Refresh
          </Button>
          <Button size="xs" leftSection={<IconPlus size={14} />} onClick={() => setCreating(true)}>
            New key
          </Button>
        </Group>
      </Group>
      {keysQuery.isError && keysQuery.data && <ErrorAlert error={keysQuery.error} title="Refreshing failed" />}
      {keysQuery.isPending ? (
        <PageLoader />
      ) : !keysQuery.data ? (
        <ErrorAlert error={keysQuery.error} />
      ) : rows.length === 0 ? (
        <Paper>
          <Empty>{includeRevoked ? "There are no API keys yet." : "There are no active API keys. Turn on “Show revoked” to see the others."}</Empty>
        </Paper>
      ) : (
        <Paper>
          <Table.ScrollContainer minWidth={980}>
            <Table highlightOnHover stickyHeader>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th miw={160}>Name</Table.Th>
                  <Table.Th w={120}>Prefix</Table.Th>
                  <Table.Th w={120}>Tenant</Table.Th>
                  <Table.Th miw={180}>Scopes</Table.Th>
                  <Table.Th w={90}>Status</Table.Th>
                  <Table.Th w={170}>Created</Table.Th>
                  <Table.Th w={120}>Last used</Table.Th>
                  <Table.Th w={170}>Expires</Table.Th>
                  <Table.Th w={100} />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {rows.map((key) => {
                  const status = keyStatus(key, now);
                  const own = session?.key_id === key.id;
                  const blocked = revokeBlockedReason({ id: key.id, status: key.status }, session?.key_id);
                  return (
                    <Table.Tr key={key.id} data-key-id={key.id} data-key-name={key.name}>
                      <Table.Td>
                        <Text size="sm" fw={500} style={{ wordBreak: "break-word" }}>
                          {key.name}
                        </Text>
                        {own && (
                          <Text size="xs" c="dimmed">
                            this session's key
                          </Text>
                        )}
                      </Table.Td>
                      <Table.Td className="mono" style={{ whiteSpace: "nowrap" }}>
                        {key.prefix}…
                      </Table.Td>
                      <Table.Td>
                        <Text size="sm">{key.tenant.name}</Text>
                      </Table.Td>
                      <Table.Td>
                        <Group gap={4}>
                          {key.scopes.map((scope) => (
                            <Badge key={scope} size="xs" variant={scope === "admin" ? "outline" : "light"} color={scope === "admin" ? "grape" : "blue"} radius="sm" styles={NO_TRUNCATION} tt="none">
                              {scope}
                            </Badge>
                          ))}
                        </Group>
                      </Table.Td>
                      <Table.Td>
                        <Badge color={KEY_STATUS_COLORS[status]} variant="light" size="sm" radius="sm" styles={NO_TRUNCATION} data-testid="key-status" data-status={status}>
                          {status}
                        </Badge>
                      </Table.Td>
                      <Table.Td style={{ whiteSpace: "nowrap" }}>
                        <Text size="sm">{formatDateTime(key.created_at)}</Text>
                        <Text size="xs" c="dimmed">
                          {formatAgo(key.created_at, now)}
                        </Text>
                      </Table.Td>
                      <Table.Td style={{ whiteSpace: "nowrap" }}>
                        <Tooltip label={formatDateTime(key.last_used_at)} disabled={!key.last_used_at} withArrow>
                          <Text size="sm" c={key.last_used_at ? undefined : "dimmed"}>
                            {key.last_used_at ? formatAgo(key.last_used_at, now) : "never"}
                          </Text>
                        </Tooltip>
                      </Table.Td>
                      <Table.Td style={{ whiteSpace: "nowrap" }}>
                        <Text size="sm" c={key.expires_at ? undefined : "dimmed"}>
                          {key.revoked_at ? `revoked ${formatAgo(key.revoked_at, now)}` : key.expires_at ? formatDateTime(key.expires_at) : "never"}
                        </Text>
                      </Table.Td>
                      <Table.Td ta="right">
                        {key.status !== "revoked" && (
                          <Tooltip label={blocked ?? ""} disabled={!blocked} multiline w={280} withArrow>
                            <span>
                              <Button
                                color="red"
                                variant="light"
                                size="xs"
                                leftSection={<IconTrash size={14} />}
                                disabled={blocked !== null}
                                onClick={() => setRevoking(key)}
                                data-testid="revoke-key"
                              >
                                Revoke
                              </Button>
                            </span>
                          </Tooltip>
                        )}
                      </Table.Td>
                    </Table.Tr>
                  );
                })}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        </Paper>
      )}
      <NewKeyModal opened={creating} onClose={() => setCreating(false)} onCreated={setCreated} />
      <SecretModal created={created} onClose={() => setCreated(null)} />
      <RevokeModal target={revoking} onClose={() => setRevoking(null)} />
    </Stack>
  );
}
