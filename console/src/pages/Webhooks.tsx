import {
  ActionIcon,
  Alert,
  Badge,
  Button,
  Checkbox,
  Group,
  Modal,
  Paper,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
  Textarea,
  Title,
  Tooltip,
  VisuallyHidden,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import {
  IconAlertTriangle,
  IconChevronDown,
  IconChevronRight,
  IconPencil,
  IconPlus,
  IconRefresh,
  IconRotateClockwise,
  IconSend,
  IconTrash,
  IconWebhook,
} from "@tabler/icons-react";
import { Fragment, useState } from "react";
import type { FormEvent } from "react";

import { errorMessage } from "../api/client";
import { useSession } from "../api/queries";
import {
  useCreateWebhook,
  useDeleteWebhook,
  useDeliveries,
  useRedeliver,
  useRotateWebhookSecret,
  useUpdateWebhook,
  useWebhooks,
} from "../api/webhooks";
import type { Delivery, WebhookInfo, WebhookWithSecret } from "../api/webhooks";
import { hasScope } from "../auth/scopes";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { DASH, formatAgo, formatDateTime, formatMs } from "../lib/format";
import { useNow } from "../lib/useNow";
import {
  DELIVERY_STATUS_COLORS,
  ENDPOINT_STATE_COLORS,
  EVENT_HELP,
  MAX_DESCRIPTION_LENGTH,
  MAX_URL_LENGTH,
  WEBHOOK_EVENTS,
  editForm,
  endpointState,
  redeliverBlocker,
  sortEndpoints,
  statusCodeColor,
  truncate,
  validateWebhookForm,
  webhookCreateBody,
  webhookPatchBody,
} from "../lib/webhooks";
import type { WebhookForm } from "../lib/webhooks";
import { SecretOnceModal } from "../components/SecretOnceModal";

const EMPTY_FORM: WebhookForm = { url: "", events: ["job.completed"], description: "" };
const NO_TRUNCATION = { label: { overflow: "visible" } };

/** A secret the gateway showed once: after creating an endpoint or rotating its secret. */
interface ShownSecret {
  kind: "created" | "rotated";
  endpoint: WebhookWithSecret;
}

function EndpointFields({
  form,
  setForm,
  errors,
}: {
  form: WebhookForm;
  setForm: (form: WebhookForm) => void;
  errors: ReturnType<typeof validateWebhookForm>;
}) {
  return (
    <>
      <TextInput
        label="URL"
        description="Where Dalston POSTs the events; it must be a public http(s) address"
        placeholder="https://example.com/dalston"
        value={form.url}
        onChange={(e) => setForm({ ...form, url: e.currentTarget.value })}
        error={errors.url}
        maxLength={MAX_URL_LENGTH}
        data-autofocus
        required
      />
      <Checkbox.Group
        label="Events"
        description="Which job events are sent to it"
        value={form.events}
        onChange={(events) => setForm({ ...form, events })}
        error={errors.events}
        required
      >
        <Stack gap={6} mt={6}>
          {WEBHOOK_EVENTS.map((event) => (
            <Checkbox key={event} value={event} label={<Text size="sm" ff="monospace" span>{event}</Text>} description={EVENT_HELP[event]} />
          ))}
        </Stack>
      </Checkbox.Group>
      <Textarea
        label="Description"
        description="Optional: what or who receives it"
        value={form.description}
        onChange={(e) => setForm({ ...form, description: e.currentTarget.value })}
        error={errors.description}
        maxLength={MAX_DESCRIPTION_LENGTH}
        autosize
        minRows={1}
        maxRows={4}
      />
    </>
  );
}

function NewEndpointModal({ opened, onClose, onCreated }: { opened: boolean; onClose: () => void; onCreated: (endpoint: WebhookWithSecret) => void }) {
  const [form, setForm] = useState<WebhookForm>(EMPTY_FORM);
  const [touched, setTouched] = useState(false);
  const create = useCreateWebhook();
  const errors = validateWebhookForm(form);

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
    create.mutate(webhookCreateBody(form), {
      onSuccess: (created) => {
        onCreated(created);
        close(); // forgets the answer (it holds the secret) and the form
      },
    });
  }

  return (
    <Modal opened={opened} onClose={close} title="New webhook endpoint" centered size="lg">
      <form onSubmit={submit} noValidate>
        <Stack gap="sm">
          <EndpointFields form={form} setForm={setForm} errors={touched ? errors : {}} />
          {create.isError && (
            <Alert color="red" variant="light" data-testid="create-webhook-error">
              {errorMessage(create.error)}
            </Alert>
          )}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending} leftSection={<IconWebhook size={14} />}>
              Create endpoint
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

/** Mounted per opening (keyed by the endpoint), so the form starts from the endpoint as it is. */
function EditEndpointModal({ target, onClose }: { target: WebhookInfo; onClose: () => void }) {
  const [form, setForm] = useState<WebhookForm>(() => editForm(target));
  const [touched, setTouched] = useState(false);
  const update = useUpdateWebhook();
  const errors = validateWebhookForm(form);
  const body = webhookPatchBody(target, form);
  const unchanged = Object.keys(body).length === 0;

  function submit(event: FormEvent) {
    event.preventDefault();
    setTouched(true);
    if (Object.keys(errors).length > 0) return;
    if (unchanged) {
      onClose();
      return;
    }
    update.mutate(
      { id: target.id, body },
      {
        onSuccess: (saved) => {
          notifications.show({ color: "teal", message: `The endpoint ${saved.url} was saved.` });
          onClose();
        },
      },
    );
  }

  return (
    <Modal opened onClose={onClose} title="Edit webhook endpoint" centered size="lg">
      <form onSubmit={submit} noValidate data-testid="edit-webhook-form">
        <Stack gap="sm">
          <EndpointFields form={form} setForm={setForm} errors={touched ? errors : {}} />
          <Text size="xs" c="dimmed">
            The signing secret stays the same. Deliveries already queued go to the new URL from their next attempt.
          </Text>
          {update.isError && (
            <Alert color="red" variant="light" data-testid="edit-webhook-error">
              {errorMessage(update.error)}
            </Alert>
          )}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={update.isPending} disabled={unchanged} leftSection={<IconPencil size={14} />}>
              Save changes
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

function SecretModal({ shown, onClose }: { shown: ShownSecret | null; onClose: () => void }) {
  return (
    <SecretOnceModal
      secret={shown?.endpoint.secret ?? null}
      title={shown?.kind === "rotated" ? "The new signing secret" : "The endpoint's signing secret"}
      warning={
        <>
          The receiver verifies each delivery's signature with this secret (Standard Webhooks). It is shown only now; if it is lost, rotate it.
          {shown?.kind === "rotated" && " Deliveries from now on, retries included, are signed with the new secret."}
        </>
      }
      summary={
        shown && (
          <Text size="sm" style={{ wordBreak: "break-all" }}>
            <b>{shown.endpoint.url}</b> · {shown.endpoint.events.join(", ")}
          </Text>
        )
      }
      copyLabel="Copy the secret"
      testId="webhook-secret"
      onClose={onClose}
    />
  );
}

function RotateModal({ target, onClose, onRotated }: { target: WebhookInfo | null; onClose: () => void; onRotated: (endpoint: WebhookWithSecret) => void }) {
  const rotate = useRotateWebhookSecret();

  function close() {
    rotate.reset();
    onClose();
  }

  return (
    <Modal opened={target !== null} onClose={close} title="Rotate the signing secret?" centered>
      {target && (
        <Stack gap="sm">
          <Text size="sm">
            A new secret replaces the old one at once: deliveries from now on, retries included, are signed with the new one. The receiver must be given the
            new secret.
          </Text>
          <Text size="sm" c="dimmed" style={{ wordBreak: "break-all" }}>
            {target.url}
          </Text>
          {rotate.isError && (
            <Alert color="red" variant="light">
              {errorMessage(rotate.error)}
            </Alert>
          )}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={close}>
              Keep the old one
            </Button>
            <Button
              color="orange"
              loading={rotate.isPending}
              data-testid="confirm-rotate"
              onClick={() =>
                rotate.mutate(target.id, {
                  onSuccess: (endpoint) => {
                    onRotated(endpoint);
                    close();
                  },
                })
              }
            >
              Rotate secret
            </Button>
          </Group>
        </Stack>
      )}
    </Modal>
  );
}

function DeleteModal({ target, onClose }: { target: WebhookInfo | null; onClose: () => void }) {
  const remove = useDeleteWebhook();

  function close() {
    remove.reset();
    onClose();
  }

  return (
    <Modal opened={target !== null} onClose={close} title="Delete this endpoint?" centered>
      {target && (
        <Stack gap="sm">
          <Text size="sm">It stops receiving events at once; its pending deliveries and delivery history are deleted with it. This cannot be undone.</Text>
          <Text size="sm" c="dimmed" style={{ wordBreak: "break-all" }}>
            {target.url}
          </Text>
          {remove.isError && (
            <Alert color="red" variant="light">
              {errorMessage(remove.error)}
            </Alert>
          )}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={close}>
              Keep it
            </Button>
            <Button
              color="red"
              loading={remove.isPending}
              data-testid="confirm-delete"
              onClick={() =>
                remove.mutate(target.id, {
                  onSuccess: () => {
                    notifications.show({ color: "gray", message: `The endpoint ${target.url} was deleted.` });
                    close();
                  },
                })
              }
            >
              Delete endpoint
            </Button>
          </Group>
        </Stack>
      )}
    </Modal>
  );
}

function ActiveSwitch({ endpoint }: { endpoint: WebhookInfo }) {
  const update = useUpdateWebhook();
  return (
    <Switch
      size="sm"
      checked={endpoint.active}
      disabled={update.isPending}
      aria-label={endpoint.active ? "Disable the endpoint" : "Enable the endpoint"}
      data-testid="toggle-active"
      onChange={(e) => {
        const active = e.currentTarget.checked;
        update.mutate(
          { id: endpoint.id, body: { active } },
          {
            onError: (err) => notifications.show({ color: "red", title: active ? "Enabling failed" : "Disabling failed", message: errorMessage(err) }),
          },
        );
      }}
    />
  );
}

function RedeliverButton({ endpoint, delivery, allowed }: { endpoint: WebhookInfo; delivery: Delivery; allowed: boolean }) {
  const redeliver = useRedeliver();
  const blocker = redeliverBlocker(delivery, endpoint, allowed);
  return (
    <Tooltip label={blocker ?? "Send it again now, with the same webhook-id, signed with the current secret"} multiline w={260} withArrow>
      {/* A span: a disabled button gets no pointer events, and the tooltip says why it is disabled. */}
      <span style={{ display: "inline-block" }}>
        <Button
          variant="light"
          size="compact-xs"
          leftSection={<IconSend size={12} />}
          disabled={blocker !== null}
          loading={redeliver.isPending}
          data-testid="redeliver"
          onClick={() =>
            redeliver.mutate(
              { webhookId: endpoint.id, deliveryId: delivery.id },
              {
                onSuccess: () => notifications.show({ color: "blue", message: `The ${delivery.event} delivery was queued again.` }),
                onError: (err) => notifications.show({ color: "red", title: "Redelivery refused", message: errorMessage(err) }),
              },
            )
          }
        >
          Redeliver
        </Button>
      </span>
    </Tooltip>
  );
}

function Deliveries({ endpoint, now, allowed }: { endpoint: WebhookInfo; now: number; allowed: boolean }) {
  const query = useDeliveries(endpoint.id);
  if (query.isPending) return <PageLoader label="Loading deliveries…" />;
  if (!query.data) return <ErrorAlert error={query.error} />;
  const deliveries = query.data.deliveries;
  return (
    <Stack gap="xs" data-testid="deliveries">
      <Group justify="space-between">
        <Text size="sm" fw={500}>
          Delivery history
        </Text>
        <Button variant="subtle" size="compact-xs" leftSection={<IconRefresh size={12} />} onClick={() => query.refetch()} loading={query.isFetching}>
          Refresh
        </Button>
      </Group>
      {query.isError && <ErrorAlert error={query.error} title="Refreshing failed" />}
      {deliveries.length === 0 ? (
        <Empty>
          <span data-testid="deliveries-empty">No deliveries yet. Events are sent when a job of this tenant completes, fails or is cancelled.</span>
        </Empty>
      ) : (
        <Table.ScrollContainer minWidth={1000}>
          <Table withTableBorder verticalSpacing={4} fz="xs">
            <Table.Thead>
              <Table.Tr>
                <Table.Th w={150}>Created</Table.Th>
                <Table.Th w={120}>Event</Table.Th>
                <Table.Th w={90}>Status</Table.Th>
                <Table.Th w={70}>HTTP</Table.Th>
                <Table.Th w={70}>Attempts</Table.Th>
                <Table.Th miw={260}>Attempt history</Table.Th>
                <Table.Th w={150}>Finished / next</Table.Th>
                <Table.Th w={110}>
                  <VisuallyHidden>Actions</VisuallyHidden>
                </Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {deliveries.map((d) => (
                <Table.Tr key={d.id} data-delivery-id={d.id}>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>
                    <Text size="xs">{formatDateTime(d.created_at)}</Text>
                    <Text size="xs" c="dimmed">
                      {formatAgo(d.created_at, now)}
                    </Text>
                  </Table.Td>
                  <Table.Td>
                    <Text size="xs" ff="monospace">
                      {d.event}
                    </Text>
                    <Text size="xs" c="dimmed">
                      {d.format}
                      {d.job_id ? ` · job ${d.job_id.slice(0, 8)}` : ""}
                    </Text>
                  </Table.Td>
                  <Table.Td>
                    <Badge size="xs" variant="light" radius="sm" color={DELIVERY_STATUS_COLORS[d.status] ?? "gray"} styles={NO_TRUNCATION}>
                      {d.status}
                    </Badge>
                  </Table.Td>
                  <Table.Td>
                    <Text size="xs" c={statusCodeColor(d.last_status_code)} ff="monospace">
                      {d.last_status_code ?? DASH}
                    </Text>
                  </Table.Td>
                  <Table.Td>{d.attempts}</Table.Td>
                  <Table.Td>
                    {d.history.length === 0 ? (
                      <Text size="xs" c="dimmed">
                        {d.last_error ? truncate(d.last_error) : "not attempted yet"}
                      </Text>
                    ) : (
                      <Stack gap={2}>
                        {d.history.map((a) => (
                          <Text key={a.attempt} size="xs" style={{ wordBreak: "break-word" }}>
                            #{a.attempt} · {formatDateTime(a.started_at)} ·{" "}
                            <Text span size="xs" c={statusCodeColor(a.status_code)} ff="monospace">
                              {a.status_code ?? "no answer"}
                            </Text>{" "}
                            · {formatMs(a.duration_ms)}
                            {a.error && (
                              <Text span size="xs" c="red">
                                {" "}
                                · {truncate(a.error)}
                              </Text>
                            )}
                            {a.response_body && (
                              <Text span size="xs" c="dimmed">
                                {" "}
                                · “{truncate(a.response_body, 80)}”
                              </Text>
                            )}
                          </Text>
                        ))}
                      </Stack>
                    )}
                  </Table.Td>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>
                    {d.finished_at ? (
                      <Text size="xs">{formatDateTime(d.finished_at)}</Text>
                    ) : d.next_attempt_at ? (
                      <Text size="xs" c="yellow">
                        next {formatDateTime(d.next_attempt_at)}
                      </Text>
                    ) : (
                      <Text size="xs" c="dimmed">
                        {DASH}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>
                    <RedeliverButton endpoint={endpoint} delivery={d} allowed={allowed} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Stack>
  );
}

export default function Webhooks() {
  const { data: session } = useSession();
  const allowed = hasScope(session, "webhooks");
  const webhooksQuery = useWebhooks(allowed);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<ShownSecret | null>(null);
  const [rotating, setRotating] = useState<WebhookInfo | null>(null);
  const [deleting, setDeleting] = useState<WebhookInfo | null>(null);
  const [editing, setEditing] = useState<WebhookInfo | null>(null);
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const now = useNow(30000);

  if (session && !allowed) {
    return (
      <Stack gap="md">
        <Title order={3}>Webhooks</Title>
        <Alert color="yellow" variant="light" icon={<IconAlertTriangle size={18} />} title="Not allowed">
          Managing webhook endpoints needs the webhooks scope, which this session's key does not have.
        </Alert>
      </Stack>
    );
  }

  function toggleExpanded(id: string) {
    setExpanded((previous) => {
      const next = new Set(previous);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  }

  const rows = sortEndpoints(webhooksQuery.data?.webhooks ?? []);

  return (
    <Stack gap="md">
      <Group justify="space-between" align="center">
        <Title order={3}>Webhooks</Title>
        <Group gap="xs">
          <Button
            variant="default"
            size="xs"
            leftSection={<IconRefresh size={14} />}
            onClick={() => webhooksQuery.refetch()}
            loading={webhooksQuery.isFetching && !webhooksQuery.isPending}
          >
            Refresh
          </Button>
          <Button size="xs" leftSection={<IconPlus size={14} />} onClick={() => setCreating(true)}>
            New endpoint
          </Button>
        </Group>
      </Group>
      {webhooksQuery.isError && webhooksQuery.data && <ErrorAlert error={webhooksQuery.error} title="Refreshing failed" />}
      {webhooksQuery.isPending ? (
        <PageLoader />
      ) : !webhooksQuery.data ? (
        <ErrorAlert error={webhooksQuery.error} />
      ) : rows.length === 0 ? (
        <Paper>
          <Empty>There are no webhook endpoints yet. Add one to be told when jobs finish.</Empty>
        </Paper>
      ) : (
        <Paper>
          <Table.ScrollContainer minWidth={980}>
            <Table stickyHeader>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th w={36} />
                  <Table.Th miw={260}>URL</Table.Th>
                  <Table.Th miw={160}>Events</Table.Th>
                  <Table.Th w={170}>State</Table.Th>
                  <Table.Th w={170}>Created</Table.Th>
                  <Table.Th w={320}>
                    <VisuallyHidden>Actions</VisuallyHidden>
                  </Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {rows.map((endpoint) => {
                  const state = endpointState(endpoint);
                  const open = expanded.has(endpoint.id);
                  return (
                    <Fragment key={endpoint.id}>
                      <Table.Tr data-webhook-id={endpoint.id} data-webhook-url={endpoint.url}>
                        <Table.Td>
                          <Tooltip label={open ? "Hide deliveries" : "Show deliveries"} withArrow>
                            <ActionIcon
                              variant="subtle"
                              color="gray"
                              onClick={() => toggleExpanded(endpoint.id)}
                              aria-label={open ? "Hide deliveries" : "Show deliveries"}
                              aria-expanded={open}
                              data-testid="toggle-deliveries"
                            >
                              {open ? <IconChevronDown size={16} /> : <IconChevronRight size={16} />}
                            </ActionIcon>
                          </Tooltip>
                        </Table.Td>
                        <Table.Td>
                          <Text size="sm" fw={500} ff="monospace" style={{ wordBreak: "break-all" }}>
                            {endpoint.url}
                          </Text>
                          {endpoint.description && (
                            <Text size="xs" c="dimmed" style={{ wordBreak: "break-word" }}>
                              {endpoint.description}
                            </Text>
                          )}
                        </Table.Td>
                        <Table.Td>
                          <Group gap={4}>
                            {endpoint.events.map((event) => (
                              <Badge key={event} size="xs" variant="light" color="blue" radius="sm" styles={NO_TRUNCATION} tt="none">
                                {event}
                              </Badge>
                            ))}
                          </Group>
                        </Table.Td>
                        <Table.Td>
                          <Group gap="xs" wrap="nowrap">
                            <ActiveSwitch endpoint={endpoint} />
                            <Tooltip label={endpoint.disabled_reason ?? ""} disabled={!endpoint.disabled_reason} multiline w={280} withArrow>
                              <Badge
                                color={ENDPOINT_STATE_COLORS[state]}
                                variant="light"
                                size="sm"
                                radius="sm"
                                styles={NO_TRUNCATION}
                                data-testid="webhook-state"
                                data-state={state}
                              >
                                {state}
                              </Badge>
                            </Tooltip>
                          </Group>
                        </Table.Td>
                        <Table.Td style={{ whiteSpace: "nowrap" }}>
                          <Text size="sm">{formatDateTime(endpoint.created_at)}</Text>
                          <Text size="xs" c="dimmed">
                            {formatAgo(endpoint.created_at, now)}
                          </Text>
                        </Table.Td>
                        <Table.Td ta="right">
                          <Group gap={6} justify="flex-end" wrap="nowrap">
                            <Button variant="default" size="xs" leftSection={<IconPencil size={14} />} onClick={() => setEditing(endpoint)} data-testid="edit-webhook">
                              Edit
                            </Button>
                            <Button variant="light" color="orange" size="xs" leftSection={<IconRotateClockwise size={14} />} onClick={() => setRotating(endpoint)}>
                              Rotate secret
                            </Button>
                            <Button color="red" variant="light" size="xs" leftSection={<IconTrash size={14} />} onClick={() => setDeleting(endpoint)}>
                              Delete
                            </Button>
                          </Group>
                        </Table.Td>
                      </Table.Tr>
                      {open && (
                        <Table.Tr data-deliveries-for={endpoint.id}>
                          <Table.Td />
                          <Table.Td colSpan={5}>
                            <Deliveries endpoint={endpoint} now={now} allowed={allowed} />
                          </Table.Td>
                        </Table.Tr>
                      )}
                    </Fragment>
                  );
                })}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        </Paper>
      )}
      <NewEndpointModal opened={creating} onClose={() => setCreating(false)} onCreated={(endpoint) => setSecret({ kind: "created", endpoint })} />
      <RotateModal target={rotating} onClose={() => setRotating(null)} onRotated={(endpoint) => setSecret({ kind: "rotated", endpoint })} />
      <DeleteModal target={deleting} onClose={() => setDeleting(null)} />
      {editing && <EditEndpointModal key={editing.id} target={editing} onClose={() => setEditing(null)} />}
      <SecretModal shown={secret} onClose={() => setSecret(null)} />
    </Stack>
  );
}
