import { Badge, Box, Group, Table, Text, UnstyledButton } from "@mantine/core";

import type { AudioEvent } from "../../api/types";
import { eventLabel } from "../../lib/audioAnalysis";
import { formatClock, formatPercent } from "../../lib/format";

interface Props {
  events: AudioEvent[];
  /** The label a speaker id is shown under (its name, when it has one). */
  speakerLabel: (speaker: string) => string;
  colors: Map<string, string>;
  onSeek: (seconds: number) => void;
}

/** The events stage's non-speech sounds, in time order; a row plays the audio from its event. */
export function AudioEventsPanel({ events, speakerLabel, colors, onSeek }: Props) {
  const sorted = [...events].sort((a, b) => a.start - b.start || a.end - b.end);
  return (
    <Box p="sm" style={{ borderBottom: "1px solid var(--mantine-color-default-border)" }} data-testid="audio-events">
      <Group gap="xs" mb={6}>
        <Text fw={600} size="sm">
          Audio events
        </Text>
        <Text size="xs" c="dimmed">
          {sorted.length === 0 ? "No audio events found" : `${sorted.length} found · click one to play it`}
        </Text>
      </Group>
      {sorted.length > 0 && (
        <Table.ScrollContainer minWidth={480} mah={240}>
          <Table striped highlightOnHover verticalSpacing={4} fz="sm">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Time</Table.Th>
                <Table.Th>Event</Table.Th>
                <Table.Th ta="right">Confidence</Table.Th>
                <Table.Th>Speaker</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {sorted.map((e, i) => {
                const label = eventLabel(e.type);
                const speaker = e.speaker ? speakerLabel(e.speaker) : null;
                return (
                  <Table.Tr key={`${e.type}-${e.start}-${i}`} data-event-type={e.type} data-start={e.start} onClick={() => onSeek(e.start)} style={{ cursor: "pointer" }}>
                    <Table.Td>
                      <UnstyledButton
                        onClick={(event) => {
                          // The row seeks as well; once is enough.
                          event.stopPropagation();
                          onSeek(e.start);
                        }}
                        aria-label={`Play ${label} at ${formatClock(e.start)}`}
                        className="mono"
                        fz="xs"
                        c="blue"
                        style={{ whiteSpace: "nowrap" }}
                      >
                        {formatClock(e.start)} – {formatClock(e.end)}
                      </UnstyledButton>
                    </Table.Td>
                    <Table.Td>{label}</Table.Td>
                    <Table.Td ta="right">{formatPercent(e.confidence, 0)}</Table.Td>
                    <Table.Td>
                      {speaker ? (
                        <Badge size="xs" variant="light" color={colors.get(speaker) ?? "gray"} radius="sm" tt="none">
                          {speaker}
                        </Badge>
                      ) : (
                        <Text span size="xs" c="dimmed">
                          —
                        </Text>
                      )}
                    </Table.Td>
                  </Table.Tr>
                );
              })}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Box>
  );
}
