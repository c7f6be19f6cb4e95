import { Badge, Group, Paper, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { IconLock, IconSearch } from "@tabler/icons-react";
import { useMemo, useState } from "react";

import { useSettings, type SettingView } from "../api/engines";
import { useSession } from "../api/queries";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { filterSettings, FULL_BADGE, settingText } from "../lib/engines";

function Value({ s }: { s: SettingView }) {
  if (s.secret) {
    return (
      <Group gap={6} wrap="nowrap">
        <IconLock size={14} aria-hidden="true" />
        <Badge styles={FULL_BADGE} size="sm" variant="light" color={s.is_set ? "grape" : "gray"} data-testid="secret-value">
          {s.is_set ? "set · hidden" : "not set"}
        </Badge>
      </Group>
    );
  }
  const text = settingText(s);
  return (
    <Text size="sm" className="mono" c={text === "not set" ? "dimmed" : undefined} style={{ wordBreak: "break-all" }}>
      {text}
    </Text>
  );
}

export default function Settings() {
  const { data: session } = useSession();
  const admin = session?.scopes.includes("admin") ?? false;
  const settings = useSettings(admin);
  const [query, setQuery] = useState("");
  const groups = useMemo(() => filterSettings(settings.data?.groups ?? [], query), [settings.data, query]);
  if (session && !admin) return <ErrorAlert title="Admins only" error={new Error("The settings page needs a key with the admin scope.")} />;
  const total = settings.data?.groups.reduce((n, g) => n + g.settings.length, 0) ?? 0;
  const changed = settings.data?.groups.reduce((n, g) => n + g.settings.filter((s) => s.source === "set").length, 0) ?? 0;
  return (
    <Stack gap="md">
      <Group justify="space-between" align="end">
        <Stack gap={2}>
          <Title order={3}>Settings</Title>
          <Text size="sm" c="dimmed">
            The gateway's effective configuration: {total} settings, {changed} set by the environment. Secrets show only whether they are set. Change a
            setting through its environment variable and restart.
          </Text>
        </Stack>
        <TextInput
          label="Filter settings"
          placeholder="name, variable or value"
          leftSection={<IconSearch size={14} />}
          value={query}
          onChange={(e) => setQuery(e.currentTarget.value)}
          w={280}
        />
      </Group>
      {settings.isPending ? (
        <PageLoader />
      ) : !settings.data ? (
        <ErrorAlert error={settings.error} />
      ) : groups.length === 0 ? (
        <Empty>No setting matches “{query}”.</Empty>
      ) : (
        groups.map((g) => (
          <Paper p="sm" key={g.name}>
            <Text fw={600} size="sm" mb="xs">
              {g.name}
            </Text>
            <Table.ScrollContainer minWidth={760}>
              <Table verticalSpacing={4} layout="fixed">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th w="24%">Setting</Table.Th>
                    <Table.Th w="30%">Environment variable</Table.Th>
                    <Table.Th>Value</Table.Th>
                    <Table.Th w={90}>Source</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {g.settings.map((s) => (
                    <Table.Tr key={s.name} data-setting={s.name} data-secret={s.secret}>
                      <Table.Td className="mono">{s.name}</Table.Td>
                      <Table.Td className="mono" style={{ wordBreak: "break-all" }}>
                        {s.env}
                      </Table.Td>
                      <Table.Td>
                        <Value s={s} />
                      </Table.Td>
                      <Table.Td>
                        <Badge styles={FULL_BADGE} size="sm" variant={s.source === "set" ? "filled" : "light"} color={s.source === "set" ? "blue" : "gray"}>
                          {s.source === "set" ? "set" : "default"}
                        </Badge>
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          </Paper>
        ))
      )}
    </Stack>
  );
}
