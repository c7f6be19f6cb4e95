import { Box, Paper, Text } from "@mantine/core";
import { memo, useEffect, useRef } from "react";

import { formatOffset, type LiveTranscript } from "./protocol";

/**
 * Finals in order, each with its session-relative start; the open utterance's partial
 * dimmed after them. Follows the newest text unless the reader has scrolled up.
 */
export const LiveTranscriptView = memo(function LiveTranscriptView({ transcript, placeholder }: { transcript: LiveTranscript; placeholder: string }) {
  const box = useRef<HTMLDivElement>(null);
  const follow = useRef(true);

  useEffect(() => {
    const el = box.current;
    if (el && follow.current) el.scrollTop = el.scrollHeight;
  }, [transcript]);

  const empty = transcript.finals.length === 0 && !transcript.partial;
  return (
    <Paper p={0}>
      <Box
        ref={box}
        data-testid="live-transcript"
        role="log"
        aria-live="polite"
        aria-label="Live transcript"
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
        style={{ minHeight: 220, maxHeight: "55vh", overflowY: "auto", padding: "var(--mantine-spacing-md)" }}
      >
        {empty && (
          <Text size="sm" c="dimmed" ta="center" py="xl">
            {placeholder}
          </Text>
        )}
        {transcript.finals.map((f) => (
          <Box key={f.utteranceId} data-testid="live-final" data-start={f.start} style={{ display: "flex", gap: "var(--mantine-spacing-sm)", padding: "4px 0" }}>
            <Text size="sm" c="dimmed" ff="monospace" style={{ flex: "0 0 auto", minWidth: "4.5em" }} title={`${f.start.toFixed(2)}–${f.end.toFixed(2)} s`}>
              {formatOffset(f.start)}
            </Text>
            <Text size="md" data-testid="live-final-text" style={{ lineHeight: 1.5 }}>
              {f.text}
            </Text>
          </Box>
        ))}
        {transcript.partial && transcript.partial.text.trim() && (
          <Box data-testid="live-partial" style={{ display: "flex", gap: "var(--mantine-spacing-sm)", padding: "4px 0" }}>
            <Text size="sm" c="dimmed" ff="monospace" style={{ flex: "0 0 auto", minWidth: "4.5em" }}>
              {formatOffset(transcript.partial.start)}
            </Text>
            <Text size="md" c="dimmed" fs="italic" style={{ lineHeight: 1.5 }}>
              {transcript.partial.text.trim()}
            </Text>
          </Box>
        )}
      </Box>
    </Paper>
  );
});
