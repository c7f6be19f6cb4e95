import { Alert, Anchor, Badge, Button, CopyButton, Group, Paper, Progress, Select, SimpleGrid, Stack, Text, TextInput, Title } from "@mantine/core";
import { IconAlertTriangle, IconCopy, IconExternalLink, IconMicrophone, IconPlayerStopFilled } from "@tabler/icons-react";
import { useEffect, useState } from "react";
import { Link } from "react-router-dom";

import { errorMessage } from "../api/client";
import { useSession } from "../api/queries";
import { hasScope } from "../auth/scopes";
import { formatClock, formatDuration, formatMs } from "../lib/format";
import { useNow } from "../lib/useNow";
import { useRealtimeStatus } from "./live/api";
import { LiveTranscriptView } from "./live/LiveTranscriptView";
import { englishOnly, languageProblem, transcriptText } from "./live/protocol";
import { type LivePhase, useLiveSession } from "./live/useLiveSession";

const PHASES: Record<LivePhase, { label: string; color: string }> = {
  idle: { label: "Ready", color: "gray" },
  starting: { label: "Waiting for the microphone", color: "blue" },
  connecting: { label: "Connecting", color: "blue" },
  live: { label: "Live", color: "red" },
  ending: { label: "Finishing", color: "yellow" },
  ended: { label: "Ended", color: "teal" },
  failed: { label: "Failed", color: "red" },
};

const RUNNING: ReadonlySet<LivePhase> = new Set(["starting", "connecting", "live", "ending"]);

function Elapsed({ startedAt, stoppedAt }: { startedAt: number | null; stoppedAt: number | null }) {
  const now = useNow(250);
  const seconds = startedAt === null ? 0 : ((stoppedAt ?? now) - startedAt) / 1000;
  return (
    <Text size="sm" ff="monospace" data-testid="live-elapsed" aria-label="Elapsed time">
      {formatClock(Math.max(0, seconds))}
    </Text>
  );
}

export default function Live() {
  const { data: session } = useSession();
  const allowed = hasScope(session, "realtime");
  const secure = window.isSecureContext;
  const { state, level, start, stop, dismissWarning } = useLiveSession();
  const running = RUNNING.has(state.phase);
  const status = useRealtimeStatus(allowed);
  const { refetch } = status;
  const slotChanged = state.phase === "live" || state.phase === "ended" || state.phase === "failed";
  useEffect(() => {
    // A session takes a slot when it begins and frees it just after the close: re-read
    // the capacity then rather than at the next poll.
    if (!slotChanged) return;
    const timer = window.setTimeout(() => void refetch(), 1000);
    return () => window.clearTimeout(timer);
  }, [slotChanged, state.phase, refetch]);

  const models = status.data?.models ?? [];
  const [picked, setPicked] = useState<string | null>(null);
  const model = picked && models.includes(picked) ? picked : (models[0] ?? null);
  const [languageInput, setLanguageInput] = useState("");
  const englishModel = englishOnly(model);
  const language = englishModel ? "en" : languageInput.trim();
  const langError = languageProblem(language);

  const noWorkers = status.isSuccess && models.length === 0;
  const full = status.isSuccess && status.data.status === "full";
  const canStart = allowed && secure && !running && !noWorkers && !langError;
  const phase = PHASES[state.phase];
  const text = transcriptText(state.transcript);

  const modelOptions = models.map((m) => {
    const backend = status.data?.backends?.[m];
    return { value: m, label: backend ? `${m} (${backend})` : m };
  });

  if (!allowed && session) {
    return (
      <Stack gap="md">
        <Title order={3}>Live transcription</Title>
        <Alert color="yellow" variant="light" icon={<IconAlertTriangle size={18} />} title="Not allowed">
          This API key lacks the realtime scope, which live transcription needs. Log in with a key that has it.
        </Alert>
      </Stack>
    );
  }

  return (
    <Stack gap="md">
      <Group justify="space-between" align="center">
        <Title order={3}>Live transcription</Title>
        <Badge color={phase.color} variant={state.phase === "live" ? "filled" : "light"} size="lg" radius="sm" data-testid="live-phase" data-phase={state.phase}>
          {phase.label}
        </Badge>
      </Group>

      {!secure && (
        <Alert color="yellow" variant="light" icon={<IconAlertTriangle size={18} />} title="The microphone needs a secure page">
          Browsers only allow the microphone on HTTPS pages or on http://localhost. Open the console over HTTPS, or through localhost (for example
          with an SSH tunnel: <code>ssh -L 8000:localhost:8000 host</code>).
        </Alert>
      )}

      <Paper p="md">
        <SimpleGrid cols={{ base: 1, sm: 3 }} spacing="md">
          <Select
            label="Model"
            description={
              status.isError
                ? `Could not read the realtime status: ${errorMessage(status.error)}`
                : noWorkers
                  ? "No realtime worker is ready"
                  : "What the ready realtime workers serve"
            }
            placeholder={status.isPending ? "Loading…" : "Server default"}
            data={modelOptions}
            value={model}
            onChange={setPicked}
            allowDeselect={false}
            disabled={running || models.length === 0}
            comboboxProps={{ withinPortal: true }}
          />
          <TextInput
            label="Language"
            description={englishModel ? "This model is English-only" : "ISO 639-1 code such as en or de; empty detects it"}
            placeholder="detect"
            value={language}
            onChange={(e) => setLanguageInput(e.currentTarget.value)}
            error={langError}
            maxLength={8}
            disabled={running || englishModel}
          />
          <Stack gap={4}>
            <Text size="sm" fw={500}>
              Capacity
            </Text>
            <Text size="sm" data-testid="live-capacity">
              {status.data
                ? `${status.data.available_slots} of ${status.data.capacity} session slots free · ${status.data.workers.length} worker${status.data.workers.length === 1 ? "" : "s"}`
                : status.isPending
                  ? "Loading…"
                  : "unknown"}
            </Text>
          </Stack>
        </SimpleGrid>
        <Group mt="md" gap="sm" align="center">
          {running ? (
            <Button color="red" leftSection={<IconPlayerStopFilled size={16} />} onClick={stop} loading={state.phase === "ending"} data-testid="live-stop">
              Stop
            </Button>
          ) : (
            <Button leftSection={<IconMicrophone size={16} />} onClick={() => void start({ model, language: language || null })} disabled={!canStart} data-testid="live-start">
              Start
            </Button>
          )}
          <Elapsed startedAt={state.startedAt} stoppedAt={state.stoppedAt} />
          <Progress
            value={level}
            w={180}
            size="lg"
            color={level > 90 ? "red" : "teal"}
            aria-label="Microphone level"
            data-testid="live-level"
            transitionDuration={80}
          />
          {state.speaking && (
            <Badge color="teal" variant="light" size="sm">
              speech
            </Badge>
          )}
          {state.device && running && (
            <Text size="xs" c="dimmed" truncate maw={260} title={state.device}>
              {state.device}
            </Text>
          )}
        </Group>
      </Paper>

      {noWorkers && !running && (
        <Alert color="yellow" variant="light" icon={<IconAlertTriangle size={18} />} title="No realtime worker is ready">
          Live transcription needs a running realtime worker. Start one (for example <code>dalston up</code> runs one by default) and this page picks it up.
        </Alert>
      )}
      {full && !running && !state.error && (
        <Alert color="yellow" variant="light" icon={<IconAlertTriangle size={18} />} title="Every session slot is busy">
          A new session is refused until one ends.
        </Alert>
      )}
      {state.error && (
        <Alert color="red" variant="light" icon={<IconAlertTriangle size={18} />} role="alert" title={state.sessionId ? "Live transcription stopped" : "Live transcription did not start"} data-testid="live-error">
          {state.error}
        </Alert>
      )}
      {state.warning && (
        <Alert
          color="yellow"
          variant="light"
          icon={<IconAlertTriangle size={18} />}
          data-testid="live-warning"
          title={`Warning from the server at ${formatClock(state.warning.at)}`}
          withCloseButton
          closeButtonLabel="Dismiss the warning"
          onClose={dismissWarning}
        >
          {state.warning.text}
        </Alert>
      )}

      {state.sessionId && (
        <Group gap="xs" data-testid="live-session">
          <Text size="sm" c="dimmed">
            Session
          </Text>
          <Anchor component={Link} to={`/sessions/${state.sessionId}`} size="sm" ff="monospace" data-testid="live-session-link">
            {state.sessionId}
          </Anchor>
          {state.model && (
            <Text size="sm" c="dimmed">
              · {state.model}
            </Text>
          )}
        </Group>
      )}

      <LiveTranscriptView
        transcript={state.transcript}
        placeholder={running ? "Listening… finals appear here as each utterance ends; the one being spoken shows dimmed." : "Press Start and speak. The transcript appears here as you talk."}
      />

      {state.stats && (
        <Group justify="space-between" data-testid="live-stats">
          <Text size="sm" c="dimmed">
            {formatDuration(state.stats.audio_seconds)} of audio · {state.stats.finals} final{state.stats.finals === 1 ? "" : "s"} · median final latency{" "}
            {formatMs(state.stats.final_latency_ms_p50)}
          </Text>
          <Group gap="xs">
            <CopyButton value={text}>
              {({ copied, copy }) => (
                <Button variant="default" size="xs" leftSection={<IconCopy size={14} />} onClick={copy} disabled={!text}>
                  {copied ? "Copied" : "Copy transcript"}
                </Button>
              )}
            </CopyButton>
            {state.sessionId && (
              <Button component={Link} to={`/sessions/${state.sessionId}`} variant="default" size="xs" leftSection={<IconExternalLink size={14} />}>
                Open session
              </Button>
            )}
          </Group>
        </Group>
      )}
    </Stack>
  );
}
