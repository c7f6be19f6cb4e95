import "@mantine/dropzone/styles.layer.css";

import { Alert, Button, Group, NumberInput, Paper, Progress, SegmentedControl, Select, SimpleGrid, Stack, Text, TextInput, Title } from "@mantine/core";
import { Dropzone } from "@mantine/dropzone";
import { IconAlertTriangle, IconFileMusic, IconUpload, IconX } from "@tabler/icons-react";
import { useQueryClient } from "@tanstack/react-query";
import { useMemo, useRef, useState } from "react";
import type { FormEvent } from "react";
import { useNavigate } from "react-router-dom";

import { errorMessage, isCsrfFailure, isUnauthorized } from "../api/client";
import { paths } from "../api/endpoints";
import { endSession, keys, useModels, useSession } from "../api/queries";
import type { JobDetail, Model, SpeakerDetection } from "../api/types";
import { upload } from "../api/upload";
import type { UploadProgress } from "../api/upload";
import { hasScope } from "../auth/scopes";
import { formatBytes, formatPercent } from "../lib/format";
import { buildTranscriptionForm, NO_ENRICHMENT } from "../lib/submission";
import type { EnrichmentChoice, SubmissionOptions } from "../lib/submission";
import { EnrichmentOptions } from "./newjob/EnrichmentOptions";

const SPEAKER_MODES: { value: SpeakerDetection; label: string }[] = [
  { value: "none", label: "None" },
  { value: "diarize", label: "Diarize" },
  { value: "per_channel", label: "Per channel" },
];

function modelOptions(models: Model[]) {
  const named = models.filter((m) => !m.root).map((m) => ({ value: m.id, label: m.id }));
  const aliases = models.filter((m) => m.root).map((m) => ({ value: m.id, label: `${m.id} → ${m.root}` }));
  return [
    { value: "", label: "Server default" },
    ...(named.length ? [{ group: "Models", items: named }] : []),
    ...(aliases.length ? [{ group: "Aliases", items: aliases }] : []),
  ];
}

export default function NewJob() {
  const navigate = useNavigate();
  const client = useQueryClient();
  const { data: session } = useSession();
  const models = useModels();
  const [file, setFile] = useState<File | null>(null);
  const [rejected, setRejected] = useState<string | null>(null);
  const [model, setModel] = useState<string>("");
  const [language, setLanguage] = useState("");
  const [speakers, setSpeakers] = useState<SpeakerDetection>("none");
  const [numSpeakers, setNumSpeakers] = useState<number | string>("");
  const [minSpeakers, setMinSpeakers] = useState<number | string>("");
  const [maxSpeakers, setMaxSpeakers] = useState<number | string>("");
  const [enrichment, setEnrichment] = useState<EnrichmentChoice>(NO_ENRICHMENT);
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const abort = useRef<AbortController | null>(null);
  const canWrite = hasScope(session, "jobs:write");
  const options = useMemo(() => modelOptions(models.data?.data ?? []), [models.data]);

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (!file) {
      setError("Choose an audio file first.");
      return;
    }
    const submission: SubmissionOptions = {
      model,
      language,
      speakerDetection: speakers,
      numSpeakers: typeof numSpeakers === "number" ? numSpeakers : null,
      minSpeakers: typeof minSpeakers === "number" ? minSpeakers : null,
      maxSpeakers: typeof maxSpeakers === "number" ? maxSpeakers : null,
      enrichment,
    };
    setError(null);
    setBusy(true);
    setProgress({ loaded: 0, total: file.size });
    abort.current = new AbortController();
    try {
      const job = await upload<JobDetail>(paths.jobs, buildTranscriptionForm(file, submission), {
        onProgress: setProgress,
        signal: abort.current.signal,
      });
      client.setQueryData(keys.job(job.id), job);
      client.invalidateQueries({ queryKey: keys.jobsAll });
      navigate(`/jobs/${job.id}`);
    } catch (err) {
      if (err instanceof DOMException && err.name === "AbortError") setError("The upload was cancelled.");
      else setError(errorMessage(err));
      if (isUnauthorized(err)) endSession(client);
      else if (isCsrfFailure(err)) void client.invalidateQueries({ queryKey: keys.session });
      setProgress(null);
    } finally {
      setBusy(false);
      abort.current = null;
    }
  }

  const fraction = progress && progress.total ? progress.loaded / progress.total : null;

  return (
    <Stack gap="md" maw={860}>
      <Title order={3}>New transcription</Title>
      {!canWrite && (
        <Alert color="yellow" variant="light" icon={<IconAlertTriangle size={18} />}>
          This API key lacks the jobs:write scope, so it cannot submit jobs.
        </Alert>
      )}
      <form onSubmit={onSubmit}>
        <Stack gap="md">
          <Dropzone
            onDrop={(files) => {
              setFile(files[0] ?? null);
              setRejected(null);
              setError(null);
            }}
            onReject={(rejections) => setRejected(rejections[0]?.errors[0]?.message ?? "That file was not accepted.")}
            multiple={false}
            disabled={busy || !canWrite}
            name="file"
            inputProps={{ "aria-label": "Audio or video file" }}
            data-testid="dropzone"
          >
            <Group justify="center" gap="lg" mih={120} style={{ pointerEvents: "none" }}>
              <Dropzone.Accept>
                <IconUpload size={40} stroke={1.5} />
              </Dropzone.Accept>
              <Dropzone.Reject>
                <IconX size={40} stroke={1.5} />
              </Dropzone.Reject>
              <Dropzone.Idle>
                <IconFileMusic size={40} stroke={1.5} />
              </Dropzone.Idle>
              <div>
                {file ? (
                  <>
                    <Text size="lg" fw={600} style={{ wordBreak: "break-all" }} data-testid="chosen-file">
                      {file.name}
                    </Text>
                    <Text size="sm" c="dimmed">
                      {formatBytes(file.size)} · drop another file or click to replace it
                    </Text>
                  </>
                ) : (
                  <>
                    <Text size="lg">Drop an audio or video file here, or click to choose one</Text>
                    <Text size="sm" c="dimmed">
                      wav, flac, mp3, ogg/opus, m4a/aac, webm and anything else FFmpeg decodes
                    </Text>
                  </>
                )}
              </div>
            </Group>
          </Dropzone>
          {rejected && (
            <Text c="red" size="sm">
              {rejected}
            </Text>
          )}

          <Paper p="md">
            <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="md">
              <Select
                label="Model"
                description={models.isError ? `Could not load the model list: ${errorMessage(models.error)}` : "What this server serves; aliases point at a model"}
                data={options}
                value={model}
                onChange={(v) => setModel(v ?? "")}
                allowDeselect={false}
                disabled={busy}
                searchable
                nothingFoundMessage="No such model"
                comboboxProps={{ withinPortal: true }}
              />
              <TextInput
                label="Language"
                description="ISO 639-1 code such as en or de; leave empty to detect"
                placeholder="detect"
                value={language}
                onChange={(e) => setLanguage(e.currentTarget.value)}
                maxLength={8}
                disabled={busy}
              />
            </SimpleGrid>
            <Stack gap={4} mt="md">
              <Text size="sm" fw={500}>
                Speaker detection
              </Text>
              <SegmentedControl data={SPEAKER_MODES} value={speakers} onChange={(v) => setSpeakers(v as SpeakerDetection)} disabled={busy} style={{ alignSelf: "flex-start" }} />
              <Text size="xs" c="dimmed">
                {speakers === "none" && "One speaker track; no speaker labels."}
                {speakers === "diarize" && "Find who speaks when in a mixed recording."}
                {speakers === "per_channel" && "Each channel of a multi-channel file is one speaker."}
              </Text>
            </Stack>
            {speakers === "diarize" && (
              <SimpleGrid cols={{ base: 1, sm: 3 }} spacing="md" mt="sm">
                <NumberInput label="Number of speakers" description="if you know it" min={1} max={32} value={numSpeakers} onChange={setNumSpeakers} disabled={busy} allowDecimal={false} />
                <NumberInput label="At least" min={1} max={32} value={minSpeakers} onChange={setMinSpeakers} disabled={busy || numSpeakers !== ""} allowDecimal={false} />
                <NumberInput label="At most" min={1} max={32} value={maxSpeakers} onChange={setMaxSpeakers} disabled={busy || numSpeakers !== ""} allowDecimal={false} />
              </SimpleGrid>
            )}
          </Paper>

          <EnrichmentOptions value={enrichment} onChange={setEnrichment} disabled={busy} />

          {progress && (
            <Stack gap={4}>
              <Progress value={(fraction ?? 0) * 100} animated={fraction === null || fraction >= 1} size="lg" aria-label="upload progress" data-testid="upload-progress" />
              <Text size="xs" c="dimmed">
                {fraction !== null && fraction >= 1
                  ? "Uploaded; the gateway is checking the audio…"
                  : `Uploading ${formatBytes(progress.loaded)}${progress.total ? ` of ${formatBytes(progress.total)} (${formatPercent(fraction, 0)})` : ""}`}
              </Text>
            </Stack>
          )}
          {error && (
            <Alert color="red" variant="light" icon={<IconAlertTriangle size={18} />} role="alert" data-testid="submit-error" title="Not submitted">
              {error}
            </Alert>
          )}
          <Group gap="xs">
            <Button type="submit" leftSection={<IconUpload size={16} />} loading={busy} disabled={!file || !canWrite}>
              Transcribe
            </Button>
            {busy && (
              <Button variant="default" onClick={() => abort.current?.abort()}>
                Cancel upload
              </Button>
            )}
          </Group>
        </Stack>
      </form>
    </Stack>
  );
}
