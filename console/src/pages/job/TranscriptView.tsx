import { Badge, Box, Group, Paper, Stack, Switch, Text } from "@mantine/core";
import { Fragment, memo, useEffect, useMemo, useRef, useState } from "react";
import type { KeyboardEvent, MouseEvent } from "react";

import type { Entity } from "../../api/enrichment";
import type { Segment, Transcript } from "../../api/types";
import { Empty } from "../../components/States";
import { emotionColor, emotionScores, emotionText } from "../../lib/audioAnalysis";
import { formatClock } from "../../lib/format";
import { entityLabel, entityOfWord } from "../../lib/entities";
import { segmentSpeaker, speakerColors, speakerEntries } from "../../lib/speakers";
import { WordTimeline } from "../../lib/wordAt";
import { separators } from "../../lib/words";
import { AudioEventsPanel } from "./AudioEventsPanel";
import { CATEGORY_COLORS, EntitiesPanel } from "./EntitiesPanel";
import { SpeakerBar } from "./SpeakerBar";
import { confidenceColor, segmentConfidence } from "./stats";
import { Waveform } from "./Waveform";

interface Props {
  transcript: Transcript;
  audioSrc: string;
  toolbar?: React.ReactNode;
  /** {pipeline id: name}, from the job detail. */
  speakerNames?: Record<string, string>;
  /** Null when the key may not rename speakers. */
  onRename: ((id: string, name: string | null) => Promise<unknown>) | null;
  noWriteReason: string;
  /** The detect stage's entities (null: detection was not asked for). */
  entities?: Entity[] | null;
}

interface EntityMarks {
  /** Displayed word index -> entity index. */
  ofWord: Map<number, number>;
  entities: Entity[];
}

interface IndexedSegment {
  segment: Segment;
  /** Index of the segment's first word in the flattened list. */
  offset: number;
}

const SegmentRow = memo(function SegmentRow({ item, color, marks }: { item: IndexedSegment; color: string | undefined; marks: EntityMarks }) {
  const { segment, offset } = item;
  const speaker = segmentSpeaker(segment);
  const confidence = segmentConfidence(segment);
  const gaps = separators(segment.text, segment.words);
  return (
    <Box
      className="segment"
      py={6}
      px="xs"
      style={{ display: "grid", gridTemplateColumns: "110px 1fr", gap: 12, borderLeft: color ? `3px solid var(--mantine-color-${color}-filled)` : "3px solid transparent" }}
    >
      <Stack gap={2} align="flex-start">
        <Text
          size="xs"
          c="dimmed"
          className="mono seek"
          data-start={segment.start}
          role="button"
          tabIndex={0}
          style={{ cursor: "pointer" }}
          title="Play from here"
        >
          {formatClock(segment.start)} – {formatClock(segment.end)}
        </Text>
        {speaker && (
          <Badge size="xs" variant="light" color={color ?? "gray"} radius="sm" tt="none" data-speaker={speaker} maw={104}>
            {speaker}
          </Badge>
        )}
        {confidence != null && (
          <Text size="xs" c={confidenceColor(confidence)} title="segment confidence: mean word probability (else the decoder's)" data-confidence={confidence.toFixed(2)}>
            conf {confidence.toFixed(2)}
          </Text>
        )}
        {segment.emotion && (
          <Badge size="xs" variant="light" color={emotionColor(segment.emotion.label)} radius="sm" tt="none" title={emotionScores(segment.emotion)} data-emotion={segment.emotion.label} maw={104}>
            {emotionText(segment.emotion)}
          </Badge>
        )}
      </Stack>
      <Text size="sm" lh={1.7}>
        {segment.words.length === 0
          ? segment.text.trim()
          : segment.words.map((w, i) => {
              const entityIndex = marks.ofWord.get(offset + i);
              const entity = entityIndex === undefined ? undefined : marks.entities[entityIndex];
              const color = entity ? (CATEGORY_COLORS[entity.category] ?? "gray") : null;
              return (
                <Fragment key={i}>
                  {gaps[i]}
                  <span
                    className={entity ? "word entity" : "word"}
                    data-index={offset + i}
                    data-start={w.start}
                    data-end={w.end}
                    data-entity={entity?.type}
                    role="button"
                    tabIndex={0}
                    title={`${formatClock(w.start)}${w.probability != null ? ` · p ${w.probability.toFixed(2)}` : ""}${entity ? ` · ${entityLabel(entity.type)}` : ""}`}
                    style={{
                      ...(w.probability != null && w.probability < 0.5 ? { textDecoration: "underline dotted", textUnderlineOffset: 3 } : {}),
                      ...(color ? { background: `var(--mantine-color-${color}-light)`, borderRadius: 3, padding: "0 2px" } : {}),
                    }}
                  >
                    {w.text.trim()}
                  </span>
                </Fragment>
              );
            })}
      </Text>
    </Box>
  );
});

export function TranscriptView({ transcript, audioSrc, toolbar, speakerNames, onRename, noWriteReason, entities }: Props) {
  const audioRef = useRef<HTMLAudioElement>(null);
  const bodyRef = useRef<HTMLDivElement>(null);
  const [follow, setFollow] = useState(true);
  const followRef = useRef(follow);
  followRef.current = follow;

  const { items, words } = useMemo(() => {
    let offset = 0;
    const out: IndexedSegment[] = [];
    const flat = [];
    for (const segment of transcript.segments) {
      out.push({ segment, offset });
      offset += segment.words.length;
      flat.push(...segment.words);
    }
    return { items: out, words: flat };
  }, [transcript]);
  const timeline = useMemo(() => new WordTimeline(words), [words]);
  const marks = useMemo<EntityMarks>(
    () => ({ ofWord: entities?.length ? entityOfWord(words, transcript.words, entities) : new Map(), entities: entities ?? [] }),
    [words, transcript.words, entities],
  );
  const colors = useMemo(() => speakerColors(transcript), [transcript]);
  const speakers = useMemo(() => speakerEntries(transcript, speakerNames), [transcript, speakerNames]);
  // Segments carry their speakers' names as served; an event's speaker may still be the id.
  const speakerLabel = (id: string) => speakerNames?.[id] ?? transcript.speaker_names?.[id] ?? id;

  // Highlight the playing word by toggling a class on two spans: no React render per tick.
  useEffect(() => {
    const audio = audioRef.current;
    const body = bodyRef.current;
    if (!audio || !body) return;
    let current = -1;
    let frame = 0;
    const update = () => {
      const index = timeline.at(audio.currentTime);
      if (index === current) return;
      if (current >= 0) body.querySelector(`[data-index="${current}"]`)?.classList.remove("playing");
      current = index;
      if (index >= 0) {
        const el = body.querySelector<HTMLElement>(`[data-index="${index}"]`);
        el?.classList.add("playing");
        if (el && followRef.current && !audio.paused) {
          const rect = el.getBoundingClientRect();
          if (rect.top < 140 || rect.bottom > window.innerHeight - 40) el.scrollIntoView({ block: "center", behavior: "smooth" });
        }
      }
    };
    const loop = () => {
      update();
      frame = audio.paused ? 0 : requestAnimationFrame(loop);
    };
    const onPlay = () => {
      if (!frame) frame = requestAnimationFrame(loop);
    };
    audio.addEventListener("timeupdate", update);
    audio.addEventListener("seeked", update);
    audio.addEventListener("play", onPlay);
    return () => {
      audio.removeEventListener("timeupdate", update);
      audio.removeEventListener("seeked", update);
      audio.removeEventListener("play", onPlay);
      if (frame) cancelAnimationFrame(frame);
    };
  }, [timeline]);

  function seekFrom(target: EventTarget | null) {
    const el = (target as HTMLElement | null)?.closest<HTMLElement>("[data-start]");
    const audio = audioRef.current;
    if (!el || !audio) return false;
    const start = Number(el.dataset.start);
    if (!Number.isFinite(start)) return false;
    audio.currentTime = start;
    return true;
  }

  function seek(seconds: number) {
    const audio = audioRef.current;
    if (audio) audio.currentTime = seconds;
  }

  function onClick(event: MouseEvent) {
    seekFrom(event.target);
  }

  function onKeyDown(event: KeyboardEvent) {
    if (event.key !== "Enter" && event.key !== " ") return;
    if (seekFrom(event.target)) event.preventDefault();
  }

  return (
    <Paper p={0}>
      <Box
        p="sm"
        style={{
          position: "sticky",
          top: "var(--app-shell-header-height, 0px)",
          zIndex: 2,
          background: "var(--mantine-color-body)",
          borderBottom: "1px solid var(--mantine-color-default-border)",
          borderRadius: "var(--mantine-radius-sm) var(--mantine-radius-sm) 0 0",
        }}
      >
        <Group justify="space-between" mb={6} wrap="wrap" gap="xs">
          <Group gap="sm">
            <Text fw={600} size="sm">
              Transcript
            </Text>
            <Text size="xs" c="dimmed">
              {transcript.segments.length} segments · {words.length} words · click a word to play from it · dotted: word probability below 0.5
            </Text>
          </Group>
          <Group gap="md">
            {toolbar}
            <Switch size="xs" label="Follow playback" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} />
          </Group>
        </Group>
        <Waveform media={audioRef} duration={transcript.duration} segments={transcript.segments} colors={colors} />
        <audio ref={audioRef} controls preload="metadata" src={audioSrc} style={{ width: "100%", height: 36, display: "block" }} data-testid="player" />
      </Box>
      <SpeakerBar speakers={speakers} onRename={onRename} noWriteReason={noWriteReason} />
      {entities && <EntitiesPanel entities={entities} onSeek={seek} />}
      {transcript.audio_events && <AudioEventsPanel events={transcript.audio_events} speakerLabel={speakerLabel} colors={colors} onSeek={seek} />}
      <Box ref={bodyRef} p="xs" onClick={onClick} onKeyDown={onKeyDown} data-testid="transcript">
        {items.length === 0 ? (
          <Empty>The transcript has no segments{transcript.text ? "" : ": no speech was found"}.</Empty>
        ) : (
          items.map((item) => <SegmentRow key={item.segment.id + ":" + item.offset} item={item} color={colors.get(segmentSpeaker(item.segment) ?? "")} marks={marks} />)
        )}
      </Box>
    </Paper>
  );
}
