import { Alert, Anchor, Box, Button, Group, Modal, Paper, SimpleGrid, Stack, Text, Title, Tooltip } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconAlertTriangle, IconInfoCircle, IconTrash } from "@tabler/icons-react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Fragment, useEffect, useRef, useState } from "react";
import type { KeyboardEvent, MouseEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { ApiError, errorMessage } from "../api/client";
import { useSession } from "../api/queries";
import { deleteRealtimeSession, sessionKeys, sessionPaths, useRealtimeSession, useSessionTranscript } from "../api/sessions";
import type { SessionTranscript, SessionView } from "../api/sessions";
import { hasScope } from "../auth/scopes";
import { Empty, ErrorAlert, PageLoader } from "../components/States";
import { SessionStatusBadge } from "../components/SessionStatusBadge";
import { formatBytes, formatClock, formatDateTime, secondsBetween, formatDuration } from "../lib/format";
import { formatCount, loadWhole, playerState, protocolLabel, sessionDuration, sessionWordText } from "../lib/sessions";
import { useNow } from "../lib/useNow";
import { Field } from "../components/Field";

function DeleteAction({ session }: { session: SessionView }) {
  const { data: me } = useSession();
  const client = useQueryClient();
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const allowed = hasScope(me, "realtime");
  const active = session.status === "active";
  const remove = useMutation({
    mutationFn: () => deleteRealtimeSession(session.id),
    onSuccess: () => {
      setOpen(false);
      client.removeQueries({ queryKey: sessionKeys.one(session.id) });
      client.removeQueries({ queryKey: sessionKeys.transcript(session.id) });
      client.invalidateQueries({ queryKey: sessionKeys.all });
      notifications.show({ color: "gray", message: "The session, its recording and its transcript were deleted." });
      navigate("/sessions", { replace: true });
    },
  });
  const why = !allowed ? "This API key lacks the realtime scope." : active ? "The session is still running; it can be deleted when it ends." : "";
  return (
    <>
      <Tooltip label={why} disabled={!why}>
        <Button color="red" variant="light" size="xs" leftSection={<IconTrash size={14} />} disabled={!allowed || active} onClick={() => setOpen(true)}>
          Delete
        </Button>
      </Tooltip>
      <Modal
        opened={open}
        onClose={() => {
          setOpen(false);
          remove.reset();
        }}
        title="Delete this session?"
        centered
      >
        <Stack gap="sm">
          <Text size="sm">
            The session's history row, recording and transcript are removed for good.
            {session.enhancement_job_id ? " Its enhancement job keeps its own copy of the audio; delete that from the job's page." : ""}
          </Text>
          <Text size="sm" c="dimmed" className="mono">
            {session.id}
          </Text>
          {remove.isError && (
            <Alert color="red" variant="light">
              {errorMessage(remove.error)}
            </Alert>
          )}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={() => setOpen(false)}>
              Keep it
            </Button>
            <Button color="red" loading={remove.isPending} onClick={() => remove.mutate()} data-testid="confirm-action">
              Delete session
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}

function Header({ session, now }: { session: SessionView; now: number }) {
  const active = session.status === "active";
  const wall = secondsBetween(session.started_at, session.ended_at ?? (active ? new Date(now).toISOString() : null));
  return (
    <Stack gap="sm">
      <Group justify="space-between" align="flex-start" wrap="nowrap">
        <Box style={{ minWidth: 0 }}>
          <Group gap="sm" wrap="nowrap">
            <Title order={3} data-testid="session-title">
              Realtime session
            </Title>
            <span data-testid="session-status" data-status={session.status}>
              <SessionStatusBadge status={session.status} size="md" />
            </span>
          </Group>
          <Text size="xs" c="dimmed" className="mono" mt={2}>
            {session.id}
          </Text>
        </Box>
        <DeleteAction session={session} />
      </Group>
      <Paper p="sm">
        <SimpleGrid cols={{ base: 2, sm: 3, lg: 6 }} spacing="sm" verticalSpacing="sm">
          <Field label="Protocol">{protocolLabel(session.protocol)}</Field>
          <Field label="Model">
            <span className="mono">{session.model}</span>
          </Field>
          <Field label="Worker">
            <span className="mono">{session.worker_id ?? "—"}</span>
          </Field>
          <Field label="Audio">{sessionDuration(session)}</Field>
          <Field label="Finals">
            {formatCount(session.segment_count, "segment")} · {formatCount(session.word_count, "word")}
          </Field>
          <Field label="Recording">{session.retain_audio ? formatBytes(session.recording_bytes) : "not retained"}</Field>
          <Field label="Started">{formatDateTime(session.started_at)}</Field>
          <Field label="Ended">{formatDateTime(session.ended_at)}</Field>
          <Field label={active ? "Running for" : "Wall time"}>{formatDuration(wall)}</Field>
          {session.enhancement_job_id && (
            <Field label="Enhancement job">
              <Anchor component={Link} to={`/jobs/${session.enhancement_job_id}`} size="sm" className="mono" data-testid="enhancement-link">
                {session.enhancement_job_id.slice(0, 8)}
              </Anchor>
            </Field>
          )}
        </SimpleGrid>
      </Paper>
    </Stack>
  );
}

/**
 * The recording's URL for the player: small recordings are fetched whole into a blob URL, so
 * the player can seek (the gateway's WAV stream has no range support); null while loading.
 */
function usePlayableSrc(src: string | null, bytes: number | null): { url: string | null; failed: boolean } {
  const whole = src !== null && loadWhole(bytes);
  const [state, setState] = useState<{ url: string | null; failed: boolean }>({ url: null, failed: false });
  useEffect(() => {
    if (!src || !whole) return;
    const controller = new AbortController();
    let objectUrl: string | null = null;
    setState({ url: null, failed: false });
    fetch(src, { credentials: "same-origin", signal: controller.signal })
      .then((response) => (response.ok ? response.blob() : Promise.reject(new Error(`HTTP ${response.status}`))))
      .then((blob) => {
        objectUrl = URL.createObjectURL(blob);
        setState({ url: objectUrl, failed: false });
      })
      .catch(() => {
        if (!controller.signal.aborted) setState({ url: null, failed: true });
      });
    return () => {
      controller.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [src, whole]);
  if (!src) return { url: null, failed: false };
  if (!whole) return { url: src, failed: false };
  // A failed whole fetch falls back to streaming from the URL (plays, but seeks poorly).
  return state.failed ? { url: src, failed: true } : state;
}

function SessionTranscriptView({ transcript, audioSrc, bytes }: { transcript: SessionTranscript | undefined; audioSrc: string | null; bytes: number | null }) {
  const audioRef = useRef<HTMLAudioElement>(null);
  const playable = usePlayableSrc(audioSrc, bytes);
  const segments = transcript?.segments ?? [];

  function seekFrom(target: EventTarget | null): boolean {
    const el = (target as HTMLElement | null)?.closest<HTMLElement>("[data-start]");
    const audio = audioRef.current;
    if (!el || !audio) return false;
    const start = Number(el.dataset.start);
    if (!Number.isFinite(start)) return false;
    audio.currentTime = start;
    return true;
  }
  function onClick(event: MouseEvent) {
    seekFrom(event.target);
  }
  function onKeyDown(event: KeyboardEvent) {
    if (event.key !== "Enter" && event.key !== " ") return;
    if (seekFrom(event.target)) event.preventDefault();
  }
  const seekable = audioSrc !== null;
  return (
    <>
      {audioSrc && (
        <Box p="sm" style={{ borderBottom: "1px solid var(--mantine-color-default-border)" }}>
          {playable.url ? (
            <audio ref={audioRef} controls preload="metadata" src={playable.url} style={{ width: "100%", height: 36, display: "block" }} data-testid="player" />
          ) : (
            <Text size="sm" c="dimmed">
              Loading the recording…
            </Text>
          )}
          {playable.failed && (
            <Text size="xs" c="dimmed" mt={4}>
              The recording could not be loaded whole; it plays from the gateway, where seeking may not work.
            </Text>
          )}
        </Box>
      )}
      <Box p="xs" onClick={onClick} onKeyDown={onKeyDown} data-testid="transcript">
        {segments.length === 0 ? (
          <Empty>{transcript ? "No finals were stored for this session." : "Loading the transcript…"}</Empty>
        ) : (
          segments.map((seg, i) => (
            <Box key={`${seg.utterance_id ?? i}:${i}`} className="segment" py={6} px="xs" style={{ display: "grid", gridTemplateColumns: "110px 1fr", gap: 12 }}>
              <Text
                size="xs"
                c="dimmed"
                className={seekable ? "mono seek" : "mono"}
                data-start={seekable ? seg.start : undefined}
                role={seekable ? "button" : undefined}
                tabIndex={seekable ? 0 : undefined}
                style={seekable ? { cursor: "pointer" } : undefined}
                title={seekable ? "Play from here" : undefined}
              >
                {formatClock(seg.start)} – {formatClock(seg.end)}
              </Text>
              <Text size="sm" lh={1.7}>
                {seg.words && seg.words.length > 0 && seekable
                  ? seg.words.map((w, j) => (
                      <Fragment key={j}>
                        {j > 0 ? " " : ""}
                        <span className="word" data-start={w.start} data-end={w.end} role="button" tabIndex={0} title={formatClock(w.start)}>
                          {sessionWordText(w)}
                        </span>
                      </Fragment>
                    ))
                  : seg.text.trim()}
              </Text>
            </Box>
          ))
        )}
      </Box>
    </>
  );
}

export default function SessionPage() {
  const { id = "" } = useParams();
  const session = useRealtimeSession(id);
  const active = session.data?.status === "active";
  const retained = session.data?.retain_audio ?? false;
  const transcript = useSessionTranscript(id, { enabled: retained, live: active });
  const now = useNow(active ? 1000 : 60_000);

  if (session.isPending) return <PageLoader label="Loading the session…" />;
  if (!session.data) {
    const notFound = session.error instanceof ApiError && session.error.status === 404;
    return (
      <Stack gap="sm">
        {notFound ? (
          <Alert color="gray" variant="light" icon={<IconInfoCircle size={18} />} title="No such session">
            There is no realtime session {id} for this key's tenant. It may have been deleted.
          </Alert>
        ) : (
          <ErrorAlert error={session.error} />
        )}
        <Anchor component={Link} to="/sessions" size="sm">
          Back to realtime sessions
        </Anchor>
      </Stack>
    );
  }

  const data = session.data;
  const player = playerState(data);
  return (
    <Stack gap="md">
      <Header session={data} now={now} />
      {session.isError && <ErrorAlert error={session.error} title="Refreshing failed" />}
      {data.error && (
        <Alert color="red" variant="light" icon={<IconAlertTriangle size={18} />} title={`The session ${data.status === "failed" ? "failed" : "reported an error"}`}>
          <Text size="sm" style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}>
            {data.error}
          </Text>
        </Alert>
      )}
      {data.enhancement_error && (
        <Alert color="yellow" variant="light" icon={<IconAlertTriangle size={18} />} title="No enhancement job">
          {data.enhancement_error}
        </Alert>
      )}
      <Paper p={0}>
        <Group justify="space-between" p="sm" pb={0} gap="xs">
          <Text fw={600} size="sm">
            Transcript
          </Text>
          <Text size="xs" c="dimmed">
            {active ? "live: refreshes while the session runs" : player.kind === "player" ? "click a time or word to play from it" : ""}
          </Text>
        </Group>
        {player.kind === "none" && (
          <Text size="sm" c="dimmed" px="sm" pt="xs" data-testid="no-player">
            {player.reason}
          </Text>
        )}
        {!retained ? (
          <Empty>Nothing was stored for this session.</Empty>
        ) : transcript.isError && !transcript.data ? (
          <Box p="sm">
            <ErrorAlert error={transcript.error} title="Could not load the transcript" />
          </Box>
        ) : (
          <SessionTranscriptView transcript={transcript.data} audioSrc={player.kind === "player" ? sessionPaths.audio(data.id) : null} bytes={data.recording_bytes} />
        )}
      </Paper>
    </Stack>
  );
}
