import { Box, Text, useComputedColorScheme, useMantineTheme } from "@mantine/core";
import { useEffect, useRef, useState } from "react";
import type { RefObject } from "react";

import type { Segment } from "../../api/types";
import { formatClock } from "../../lib/format";
import { segmentSpeaker } from "../../lib/speakers";

// wavesurfer decodes the whole file in the browser (8 kHz mono floats: ~115 MB an hour):
// longer audio keeps the plain player and the speaker lane.
const MAX_WAVEFORM_SECONDS = 3600;
const HEIGHT = 56;

interface Props {
  /** The page's <audio> element: wavesurfer draws it and drives it, it stays the one player. */
  media: RefObject<HTMLAudioElement | null>;
  duration: number;
  segments: Segment[];
  colors: Map<string, string>;
}

type State = "loading" | "ready" | "failed" | "off";

export function Waveform({ media, duration, segments, colors }: Props) {
  const container = useRef<HTMLDivElement>(null);
  const theme = useMantineTheme();
  const dark = useComputedColorScheme("light") === "dark";
  const tooLong = duration > MAX_WAVEFORM_SECONDS;
  const [state, setState] = useState<State>(tooLong ? "off" : "loading");
  const surfer = useRef<{ setOptions: (o: Record<string, unknown>) => void } | null>(null);
  const waveColor = dark ? theme.colors.gray[6] : theme.colors.gray[4];
  const progressColor = dark ? theme.colors.blue[4] : theme.colors.blue[6];
  const cursorColor = dark ? theme.colors.gray[2] : theme.colors.dark[7];
  // The colour scheme may settle after the first render, before wavesurfer's chunk arrives:
  // it is created with the colours of that moment, and follows changes through setOptions.
  const palette = useRef({ waveColor, progressColor, cursorColor });
  palette.current = { waveColor, progressColor, cursorColor };

  useEffect(() => {
    const element = media.current;
    const box = container.current;
    if (tooLong || !element || !box) return;
    let cancelled = false;
    let destroy: (() => void) | null = null;
    // Its own chunk: the page and the player work before (and without) it.
    import("wavesurfer.js")
      .then(({ default: WaveSurfer }) => {
        if (cancelled) return;
        const ws = WaveSurfer.create({
          container: box,
          media: element,
          height: HEIGHT,
          ...palette.current,
          cursorWidth: 2,
          barWidth: 2,
          barGap: 1,
          barRadius: 2,
          normalize: true,
          dragToSeek: true,
          hideScrollbar: true,
          autoScroll: false,
          fetchParams: { credentials: "same-origin" },
        });
        ws.on("ready", () => setState("ready"));
        ws.on("error", () => setState("failed"));
        surfer.current = ws;
        destroy = () => ws.destroy();
      })
      .catch(() => setState("failed"));
    return () => {
      cancelled = true;
      surfer.current = null;
      destroy?.();
    };
    // Colours change through setOptions below, without decoding the audio again.
  }, [media, tooLong]);

  useEffect(() => {
    surfer.current?.setOptions({ waveColor, progressColor, cursorColor });
  }, [waveColor, progressColor, cursorColor]);

  const lane = segments.filter((s) => segmentSpeaker(s) !== null && s.end > s.start);
  const total = duration > 0 ? duration : Math.max(0, ...segments.map((s) => s.end));

  function seek(seconds: number) {
    if (media.current) media.current.currentTime = seconds;
  }

  return (
    <Box mb={6} data-testid="waveform" data-state={state}>
      {!tooLong && (
        <Box pos="relative" h={HEIGHT}>
          <div ref={container} aria-hidden="true" style={{ height: HEIGHT }} />
          {state !== "ready" && (
            <Text size="xs" c="dimmed" pos="absolute" top={HEIGHT / 2 - 9} left={0}>
              {state === "failed" ? "The waveform could not be drawn; the player below still works." : "Drawing the waveform…"}
            </Text>
          )}
        </Box>
      )}
      {lane.length > 0 && total > 0 && (
        // Who speaks when, in the speakers' colours; a click plays from that turn.
        <Box pos="relative" h={6} mt={2} style={{ borderRadius: 2, background: "var(--mantine-color-default-hover)" }} aria-hidden="true">
          {lane.map((s) => {
            const label = segmentSpeaker(s) as string;
            return (
              <Box
                key={`${s.id}:${s.start}`}
                pos="absolute"
                top={0}
                h={6}
                title={`${label} · ${formatClock(s.start)}`}
                onClick={() => seek(s.start)}
                style={{
                  left: `${(s.start / total) * 100}%`,
                  width: `${Math.max(0.2, ((s.end - s.start) / total) * 100)}%`,
                  background: `var(--mantine-color-${colors.get(label) ?? "gray"}-filled)`,
                  cursor: "pointer",
                }}
                data-lane-speaker={label}
              />
            );
          })}
        </Box>
      )}
      {tooLong && (
        <Text size="xs" c="dimmed">
          No waveform for audio over {MAX_WAVEFORM_SECONDS / 3600} h (it is drawn in the browser).
        </Text>
      )}
    </Box>
  );
}
