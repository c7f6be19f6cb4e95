import { Alert, Button, Group, Paper, Select, Text, TextInput } from "@mantine/core";
import { IconAlertTriangle, IconFilterOff, IconSearch } from "@tabler/icons-react";
import { useEffect, useRef, useState } from "react";

import { useModels } from "../../api/queries";
import { JOB_STATUSES } from "../../api/types";
import { humanize } from "../../lib/format";
import { activeFilterCount, dateRangeError, MAX_SEARCH_CHARS, modelOptions, SPEAKER_MODES } from "../../lib/jobFilters";
import type { JobFilters } from "../../lib/jobFilters";

const SEARCH_DEBOUNCE_MS = 300;
const STATUS_OPTIONS = JOB_STATUSES.map((s) => ({ value: s, label: humanize(s) }));
const SPEAKER_OPTIONS = SPEAKER_MODES.map((s) => ({ value: s, label: s === "none" ? "No speaker labels" : humanize(s) }));

interface Props {
  filters: JobFilters;
  /** Models of the listed jobs: offered even when the server no longer lists them. */
  modelsInUse: readonly string[];
  onChange: (name: keyof JobFilters, value: string | null, options?: { replace?: boolean }) => void;
  onClear: () => void;
}

/** The Jobs page's filters. The file-name search applies once typing pauses; the rest at once. */
export function JobFiltersBar({ filters, modelsInUse, onChange, onClear }: Props) {
  const models = useModels();
  const [search, setSearch] = useState(filters.q ?? "");
  const timer = useRef<number | null>(null);

  // The URL changed under us (back button, "Clear filters"): show its search, unless the user is typing.
  useEffect(() => {
    if (timer.current === null) setSearch(filters.q ?? "");
  }, [filters.q]);
  useEffect(() => () => {
    if (timer.current !== null) window.clearTimeout(timer.current);
  }, []);

  function typed(value: string) {
    setSearch(value);
    if (timer.current !== null) window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => {
      timer.current = null;
      onChange("q", value, { replace: true });
    }, SEARCH_DEBOUNCE_MS);
  }

  function clear() {
    if (timer.current !== null) window.clearTimeout(timer.current);
    timer.current = null;
    setSearch("");
    onClear();
  }

  const modelData = modelOptions((models.data?.data ?? []).map((m) => m.id), [...modelsInUse, filters.model]);
  const rangeError = dateRangeError(filters);
  const active = activeFilterCount(filters);

  return (
    <Paper p="sm" data-testid="job-filters">
      <Group gap="sm" align="flex-end" wrap="wrap">
        <TextInput
          label="File name"
          placeholder="Search file names"
          leftSection={<IconSearch size={14} />}
          value={search}
          maxLength={MAX_SEARCH_CHARS}
          onChange={(e) => typed(e.currentTarget.value)}
          size="xs"
          style={{ flex: 1, minWidth: 180 }}
          data-testid="job-search"
        />
        <Select label="Status" placeholder="Any status" data={STATUS_OPTIONS} value={filters.status} onChange={(v) => onChange("status", v)} clearable size="xs" w={130} />
        <Select
          label="Model"
          placeholder="Any model"
          data={modelData}
          value={filters.model}
          onChange={(v) => onChange("model", v)}
          searchable
          clearable
          nothingFoundMessage="No such model"
          size="xs"
          w={190}
        />
        <Select label="Speakers" placeholder="Any mode" data={SPEAKER_OPTIONS} value={filters.speaker_detection} onChange={(v) => onChange("speaker_detection", v)} clearable size="xs" w={160} />
        <TextInput label="Created from" type="date" value={filters.from ?? ""} onChange={(e) => onChange("from", e.currentTarget.value)} size="xs" w={140} aria-invalid={rangeError ? true : undefined} />
        <TextInput label="Created to" type="date" value={filters.to ?? ""} onChange={(e) => onChange("to", e.currentTarget.value)} size="xs" w={140} aria-invalid={rangeError ? true : undefined} />
        <Button variant="subtle" size="xs" leftSection={<IconFilterOff size={14} />} onClick={clear} disabled={active === 0 && search === ""}>
          Clear filters
        </Button>
      </Group>
      {rangeError && (
        <Alert color="red" variant="light" mt="xs" p={6} role="alert" icon={<IconAlertTriangle size={16} />}>
          <Text size="xs">{rangeError} The dates are not applied until the range is fixed.</Text>
        </Alert>
      )}
    </Paper>
  );
}
