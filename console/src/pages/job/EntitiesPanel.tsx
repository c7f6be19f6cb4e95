import { Badge, Box, Group, Table, Text, UnstyledButton } from "@mantine/core";

import type { Entity } from "../../api/enrichment";
import { categoryLabel, entityLabel } from "../../lib/entities";
import { formatClock } from "../../lib/format";

interface Props {
  entities: Entity[];
  onSeek: (seconds: number) => void;
}

export const CATEGORY_COLORS: Record<string, string> = { pii: "grape", pci: "orange", phi: "teal", other: "gray" };

/** The detected entities, in the order spoken; a row plays the audio from its entity. */
export function EntitiesPanel({ entities, onSeek }: Props) {
  return (
    <Box p="sm" style={{ borderBottom: "1px solid var(--mantine-color-default-border)" }} data-testid="entities-panel">
      <Group gap="xs" mb={6}>
        <Text fw={600} size="sm">
          Entities
        </Text>
        <Text size="xs" c="dimmed">
          {entities.length === 0 ? "detection ran and found none" : `${entities.length} found · highlighted in the transcript · click one to play it`}
        </Text>
      </Group>
      {entities.length > 0 && (
        <Table.ScrollContainer minWidth={480} mah={240}>
          <Table striped highlightOnHover verticalSpacing={4} fz="sm">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Type</Table.Th>
                <Table.Th>Category</Table.Th>
                <Table.Th>Text</Table.Th>
                <Table.Th>Time</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {entities.map((e, i) => (
                <Table.Tr key={`${e.start_char}-${i}`} data-entity-type={e.type}>
                  <Table.Td>{entityLabel(e.type)}</Table.Td>
                  <Table.Td>
                    <Badge size="xs" variant="light" color={CATEGORY_COLORS[e.category] ?? "gray"} tt="none">
                      {categoryLabel(e.category)}
                    </Badge>
                  </Table.Td>
                  <Table.Td style={{ wordBreak: "break-word" }}>{e.text}</Table.Td>
                  <Table.Td>
                    <UnstyledButton onClick={() => onSeek(e.start)} aria-label={`Play ${entityLabel(e.type)} at ${formatClock(e.start)}`} className="mono" fz="xs" c="blue">
                      {formatClock(e.start)}
                    </UnstyledButton>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Box>
  );
}
