import { Button, ColorSwatch, Group, Popover, Stack, Text, TextInput, Tooltip, UnstyledButton } from "@mantine/core";
import { IconPencil } from "@tabler/icons-react";
import { useState } from "react";
import type { FormEvent } from "react";

import type { SpeakerEntry } from "../../lib/speakers";
import { MAX_SPEAKER_NAME_CHARS, nameProblem } from "../../lib/speakers";

interface Props {
  speakers: SpeakerEntry[];
  /** Null when the key may not rename (no jobs:write). */
  onRename: ((id: string, name: string | null) => Promise<unknown>) | null;
  noWriteReason: string;
}

function RenameForm({ entry, labels, onRename, close }: { entry: SpeakerEntry; labels: string[]; onRename: NonNullable<Props["onRename"]>; close: () => void }) {
  const [name, setName] = useState(entry.label);
  const problem = nameProblem(name, entry.label, labels);

  function save(value: string | null) {
    // The page shows the new name at once (optimistic); a refusal puts the old one back
    // and says why (the mutation's notification), so the form can close now.
    onRename(entry.id, value).catch(() => undefined);
    close();
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    if (!problem) save(name);
  }

  return (
    <form onSubmit={submit}>
      <Stack gap="xs" w={260}>
        <TextInput
          label="Speaker name"
          description={entry.id === entry.label ? `Shown instead of ${entry.id}` : `Pipeline id: ${entry.id}`}
          value={name}
          onChange={(e) => setName(e.currentTarget.value)}
          maxLength={MAX_SPEAKER_NAME_CHARS + 10}
          error={name !== entry.label ? problem : null}
          data-autofocus
          data-testid="speaker-name-input"
        />
        <Group justify="space-between" gap="xs">
          {entry.id !== entry.label ? (
            <Button variant="subtle" size="xs" color="gray" onClick={() => save(null)}>
              Use {entry.id}
            </Button>
          ) : (
            <span />
          )}
          <Group gap="xs">
            <Button variant="default" size="xs" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" size="xs" disabled={problem !== null || name.trim() === entry.label}>
              Save name
            </Button>
          </Group>
        </Group>
      </Stack>
    </form>
  );
}

function SpeakerChip({ entry, labels, onRename, noWriteReason }: { entry: SpeakerEntry; labels: string[] } & Omit<Props, "speakers">) {
  const [open, setOpen] = useState(false);
  const chip = (
    <Group gap={6} wrap="nowrap">
      <ColorSwatch color={`var(--mantine-color-${entry.color}-filled)`} size={12} withShadow={false} />
      <Text size="sm" fw={500}>
        {entry.label}
      </Text>
      {entry.renamable && <IconPencil size={13} style={{ opacity: 0.6 }} />}
    </Group>
  );
  if (!entry.renamable) return <span data-speaker-chip={entry.id}>{chip}</span>;
  if (!onRename) {
    return (
      <Tooltip label={noWriteReason}>
        <UnstyledButton disabled aria-label={`Rename ${entry.label}`} data-speaker-chip={entry.id} style={{ cursor: "not-allowed" }}>
          {chip}
        </UnstyledButton>
      </Tooltip>
    );
  }
  return (
    <Popover opened={open} onChange={setOpen} position="bottom-start" withArrow trapFocus returnFocus shadow="md">
      <Popover.Target>
        <UnstyledButton
          onClick={() => setOpen((o) => !o)}
          aria-label={`Rename ${entry.label}`}
          aria-expanded={open}
          data-speaker-chip={entry.id}
          px={8}
          py={2}
          style={{ borderRadius: "var(--mantine-radius-sm)", border: "1px solid var(--mantine-color-default-border)" }}
        >
          {chip}
        </UnstyledButton>
      </Popover.Target>
      <Popover.Dropdown>{open && <RenameForm entry={entry} labels={labels} onRename={onRename} close={() => setOpen(false)} />}</Popover.Dropdown>
    </Popover>
  );
}

/** The transcript's speakers in their colours; a click on one renames it. */
export function SpeakerBar({ speakers, onRename, noWriteReason }: Props) {
  if (speakers.length === 0) return null;
  const labels = speakers.map((s) => s.label);
  return (
    <Group gap="xs" px="sm" py={8} style={{ borderBottom: "1px solid var(--mantine-color-default-border)" }} data-testid="speakers">
      <Text size="xs" c="dimmed" tt="uppercase" fw={600} mr={4}>
        Speakers
      </Text>
      {speakers.map((entry) => (
        <SpeakerChip key={entry.id} entry={entry} labels={labels} onRename={onRename} noWriteReason={noWriteReason} />
      ))}
    </Group>
  );
}
