import { Checkbox, Group, MultiSelect, Paper, SegmentedControl, Select, SimpleGrid, Stack, Switch, Text } from "@mantine/core";
import { useMemo } from "react";

import { errorMessage } from "../../api/client";
import { useEnrichment } from "../../api/enrichment";
import { stageOption } from "../../lib/audioAnalysis";
import { entityTypeGroups } from "../../lib/entities";
import { humanize } from "../../lib/format";
import { detects } from "../../lib/submission";
import type { AudioRedactionMode, EnrichmentChoice, RedactionStyle } from "../../lib/submission";

const STYLES: { value: RedactionStyle | ""; label: string }[] = [
  { value: "", label: "Keep the text as spoken" },
  { value: "redacted", label: "{REDACTED}" },
  { value: "entity_type", label: "{PERSON_NAME}" },
  { value: "enumerated_entity_type", label: "{PERSON_NAME_1}, numbered" },
];

interface Props {
  value: EnrichmentChoice;
  onChange: (next: EnrichmentChoice) => void;
  disabled: boolean;
}

/** PII detection and redaction, the LLM cleanup and the audio analysis options of a new job. */
export function EnrichmentOptions({ value, onChange, disabled }: Props) {
  const capabilities = useEnrichment();
  const groups = useMemo(() => entityTypeGroups(capabilities.data?.entity_types ?? []), [capabilities.data]);
  const set = (patch: Partial<EnrichmentChoice>) => onChange({ ...value, ...patch });
  const llm = capabilities.data?.llm_refine;
  const llmOff = !llm?.available;
  const llmReason = capabilities.isError
    ? `Could not ask the server whether an LLM is configured: ${errorMessage(capabilities.error)}`
    : llm && !llm.available
      ? `Not available on this server: ${llm.reason ?? "no LLM is configured"}.`
      : "Runs through the LLM this server is configured with.";
  const detecting = detects(value);
  const asked = { loading: capabilities.isPending, error: capabilities.isError ? errorMessage(capabilities.error) : null };
  const emotions = stageOption(capabilities.data?.emotions, asked, "A label per segment from its audio: angry, happy, neutral, sad, surprised …");
  const eventTypes = (capabilities.data?.event_types ?? []).map(humanize);
  const events = stageOption(
    capabilities.data?.events,
    asked,
    `Marks non-speech sounds with their times${eventTypes.length ? `: ${eventTypes.join(", ")}` : ""}.`,
  );

  return (
    <Paper p="md" data-testid="enrichment-options">
      <Text size="sm" fw={600} mb="xs">
        Sensitive information
      </Text>
      <Stack gap="sm">
        <Switch
          label="Detect PII"
          description="Find names, phone and card numbers, emails and more in the transcript"
          checked={value.piiDetection}
          onChange={(e) => set({ piiDetection: e.currentTarget.checked })}
          disabled={disabled}
        />
        <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="md">
          <MultiSelect
            label="Entity types"
            description={
              capabilities.isError ? "The type list could not be loaded; every type is detected" : detecting ? "Leave empty to detect every type" : "Used when detecting or redacting"
            }
            placeholder={value.entityTypes.length ? undefined : "All types"}
            data={groups}
            value={value.entityTypes}
            onChange={(entityTypes) => set({ entityTypes })}
            disabled={disabled || !detecting || groups.length === 0}
            searchable
            clearable
            comboboxProps={{ withinPortal: true }}
          />
          <Select
            label="Redact the text"
            description="Replace each entity with a placeholder in the text and every export"
            data={STYLES}
            value={value.redactText ?? ""}
            onChange={(v) => set({ redactText: (v || null) as RedactionStyle | null })}
            allowDeselect={false}
            disabled={disabled}
            comboboxProps={{ withinPortal: true }}
          />
        </SimpleGrid>
        <Group gap="md" align="flex-end">
          <Switch
            label="Redact the audio"
            description="A copy of the audio with each entity silenced or bleeped"
            checked={value.redactAudio}
            onChange={(e) => set({ redactAudio: e.currentTarget.checked })}
            disabled={disabled}
          />
          {value.redactAudio && (
            <SegmentedControl
              aria-label="Audio redaction mode"
              data={[
                { value: "silence", label: "Silence" },
                { value: "beep", label: "Beep" },
              ]}
              value={value.audioMode}
              onChange={(v) => set({ audioMode: v as AudioRedactionMode })}
              disabled={disabled}
              size="xs"
            />
          )}
        </Group>
      </Stack>

      <Text size="sm" fw={600} mt="md" mb={4}>
        LLM cleanup
      </Text>
      <Text size="xs" c={llmOff ? "orange" : "dimmed"} mb="xs" data-testid="llm-availability">
        {llmReason}
      </Text>
      <Group gap="lg">
        <Checkbox label="Repair punctuation and casing, name speakers" checked={value.llmCleanup} onChange={(e) => set({ llmCleanup: e.currentTarget.checked })} disabled={disabled || llmOff} />
        <Checkbox label="Remove fillers and false starts" checked={value.noVerbatim} onChange={(e) => set({ noVerbatim: e.currentTarget.checked })} disabled={disabled || llmOff} />
        <Checkbox label="Summary" checked={value.summary} onChange={(e) => set({ summary: e.currentTarget.checked })} disabled={disabled || llmOff} />
      </Group>

      <Text size="sm" fw={600} mt="md" mb="xs">
        Audio analysis
      </Text>
      <Stack gap="sm">
        <Switch
          label="Emotion per segment"
          description={
            <Text span size="xs" c={emotions.off ? "orange" : "dimmed"} data-testid="emotions-availability">
              {emotions.text}
            </Text>
          }
          checked={value.detectEmotions}
          onChange={(e) => set({ detectEmotions: e.currentTarget.checked })}
          disabled={disabled || emotions.off}
        />
        <Switch
          label="Audio events (laughter, applause, music …)"
          description={
            <Text span size="xs" c={events.off ? "orange" : "dimmed"} data-testid="events-availability">
              {events.text}
            </Text>
          }
          checked={value.detectEvents}
          onChange={(e) => set({ detectEvents: e.currentTarget.checked })}
          disabled={disabled || events.off}
        />
      </Stack>
    </Paper>
  );
}
