import { Anchor, Badge, Group, Stack, Table, Text, Title, Tooltip } from "@mantine/core";
import { Link } from "react-router-dom";

import { useModels, type ModelsView, type WhisperModel } from "../api/engines";
import { useSession } from "../api/queries";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { FULL_BADGE } from "../lib/engines";
import { Section } from "../components/Section";

const SOURCE_KIND: Record<WhisperModel["source_kind"], string> = {
  bundled: "bundled",
  "bundled-split": "bundled in parts, joined on first load",
  configured: "DALSTON_MODELS",
};

function Weights({ m }: { m: WhisperModel }) {
  const presence =
    m.present_on_gateway === true ? (
      <Badge styles={FULL_BADGE} size="xs" color="green" variant="light">
        present
      </Badge>
    ) : m.present_on_gateway === false ? (
      <Tooltip label={m.source_kind === "bundled-split" ? "joined from the bundled parts when a process first loads it" : "the directory does not exist on the gateway's host"} withArrow multiline w={260}>
        <Badge styles={FULL_BADGE} size="xs" color={m.source_kind === "bundled-split" ? "gray" : "red"} variant="light">
          {m.source_kind === "bundled-split" ? "not joined yet" : "missing here"}
        </Badge>
      </Tooltip>
    ) : (
      <Badge styles={FULL_BADGE} size="xs" color="gray" variant="light">
        hub id: downloaded on first load
      </Badge>
    );
  return (
    <Stack gap={2}>
      <Group gap={6}>
        <Text size="sm">{SOURCE_KIND[m.source_kind]}</Text>
        {presence}
      </Group>
      <Text size="xs" c="dimmed" className="mono" style={{ wordBreak: "break-all" }}>
        {m.source}
      </Text>
    </Stack>
  );
}

function WhisperTable({ models }: { models: WhisperModel[] }) {
  return (
    <Section title="Transcription models (Whisper registry)" hint="the names model= may take, in batch jobs and realtime sessions">
      {models.length === 0 ? (
        <Empty>The model registry is empty.</Empty>
      ) : (
        <Table.ScrollContainer minWidth={980}>
          <Table verticalSpacing={6}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Model</Table.Th>
                <Table.Th>Languages</Table.Th>
                <Table.Th>Weights</Table.Th>
                <Table.Th>Batch engines</Table.Th>
                <Table.Th>Realtime workers</Table.Th>
                <Table.Th>Aliases</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {models.map((m) => (
                <Table.Tr key={m.id} data-model-id={m.id}>
                  <Table.Td>
                    <Group gap={6} wrap="nowrap">
                      <Text size="sm" fw={600} className="mono">
                        {m.id}
                      </Text>
                      {m.default && (
                        <Badge styles={FULL_BADGE} size="xs" variant="light" color="blue">
                          default
                        </Badge>
                      )}
                    </Group>
                  </Table.Td>
                  <Table.Td>{m.english_only ? "English only" : "multilingual"}</Table.Td>
                  <Table.Td maw={320}>
                    <Weights m={m} />
                  </Table.Td>
                  <Table.Td>
                    <Stack gap={2}>
                      {m.batch_engines.map((e) => (
                        <Text key={e.engine_id} size="sm">
                          <span className="mono">{e.engine_id}</span>{" "}
                          <Text span size="xs" c="dimmed">
                            {e.stage}
                            {e.word_timestamps ? " · word timestamps" : ""}
                          </Text>
                        </Text>
                      ))}
                    </Stack>
                  </Table.Td>
                  <Table.Td>
                    {m.realtime_workers.length > 0 ? (
                      <Text size="sm" className="mono">
                        {m.realtime_workers.join(", ")}
                      </Text>
                    ) : (
                      <Text size="sm" c="dimmed">
                        none
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td maw={280}>
                    <Text size="xs" c={m.aliases.length ? undefined : "dimmed"} className="mono">
                      {m.aliases.join(", ") || "—"}
                    </Text>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Section>
  );
}

function Body({ view }: { view: ModelsView }) {
  return (
    <Stack gap="md">
      <Text size="sm" c="dimmed">
        Default model <span className="mono">{view.default_model}</span> · translations use <span className="mono">{view.translation_model}</span>. Live instances and
        run times are on the{" "}
        <Anchor component={Link} to="/engines" size="sm">
          Engines page
        </Anchor>
        .
      </Text>
      <WhisperTable models={view.whisper} />
      <Section title="Engine weights" hint="engines whose weights a setting names; unset means the engine cannot run">
        <Table verticalSpacing={6}>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Engine</Table.Th>
              <Table.Th>Stage</Table.Th>
              <Table.Th>Setting</Table.Th>
              <Table.Th>Weights</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {view.engine_weights.map((w) => (
              <Table.Tr key={w.engine_id} data-weights-engine={w.engine_id}>
                <Table.Td className="mono">{w.engine_id}</Table.Td>
                <Table.Td>{w.stage}</Table.Td>
                <Table.Td className="mono">{w.setting}</Table.Td>
                <Table.Td>
                  {w.configured ? (
                    <Group gap={6}>
                      <Badge styles={FULL_BADGE} size="xs" color="green" variant="light">
                        configured
                      </Badge>
                      <Text size="sm" className="mono" style={{ wordBreak: "break-all" }}>
                        {w.value}
                      </Text>
                    </Group>
                  ) : (
                    <Badge styles={FULL_BADGE} size="xs" color="gray" variant="light">
                      not configured
                    </Badge>
                  )}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Section>
      <Section title="Realtime models" hint="served by the realtime pool now, or named by DALSTON_REALTIME_VARIANTS / DALSTON_PARAKEET_MODELS">
        {view.realtime.length === 0 ? (
          <Empty>No realtime model is served or configured.</Empty>
        ) : (
          <Table.ScrollContainer minWidth={760}>
            <Table verticalSpacing={6}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Model</Table.Th>
                  <Table.Th>Backend</Table.Th>
                  <Table.Th>Variants</Table.Th>
                  <Table.Th>Weights</Table.Th>
                  <Table.Th>Workers</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {view.realtime.map((m) => (
                  <Table.Tr key={m.id} data-realtime-model={m.id}>
                    <Table.Td className="mono" fw={600}>
                      {m.id}
                    </Table.Td>
                    <Table.Td>
                      <Tooltip label={m.backend_summary} withArrow multiline w={280}>
                        <Text size="sm" className="mono" style={{ textDecoration: "underline dotted" }}>
                          {m.backend}
                        </Text>
                      </Tooltip>
                    </Table.Td>
                    <Table.Td className="mono">{m.variants.join(", ") || "—"}</Table.Td>
                    <Table.Td>
                      {m.weights ? (
                        <Text size="xs" className="mono" style={{ wordBreak: "break-all" }}>
                          {m.weights}
                        </Text>
                      ) : (
                        <Badge styles={FULL_BADGE} size="xs" color="gray" variant="light">
                          not configured
                        </Badge>
                      )}
                    </Table.Td>
                    <Table.Td>
                      {m.workers.length > 0 ? (
                        <Text size="sm" className="mono">
                          {m.workers.join(", ")}
                        </Text>
                      ) : (
                        <Text size="sm" c="dimmed">
                          no worker serves it
                        </Text>
                      )}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Section>
    </Stack>
  );
}

export default function Models() {
  const { data: session } = useSession();
  const admin = session?.scopes.includes("admin") ?? false;
  const models = useModels(admin);
  if (session && !admin) return <ErrorAlert title="Admins only" error={new Error("The models page needs a key with the admin scope.")} />;
  return (
    <Stack gap="md">
      <Title order={3}>Models</Title>
      {models.isPending ? <PageLoader /> : models.data ? <Body view={models.data} /> : <ErrorAlert error={models.error} />}
    </Stack>
  );
}
