// @vitest-environment jsdom
import { MantineProvider } from "@mantine/core";
import { render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { describe, expect, it } from "vitest";

import type { EngineStatus, EnginesView } from "../api/engines";
import { EnginesBody } from "./Engines";
import { setUpMantineInJsdom } from "../test/jsdom";

setUpMantineInJsdom();

const NO_STATS = { completed: 0, failed: 0, mean_run_seconds: null, p95_run_seconds: null, mean_queue_wait_seconds: null };

function engine(id: string, over: Partial<EngineStatus>): EngineStatus {
  return {
    engine_id: id,
    stage: "transcribe",
    summary: `${id} summary`,
    word_timestamps: false,
    gpu: false,
    extra: null,
    selectable: true,
    default_for_stage: false,
    runs_stages: [],
    weights_setting: null,
    unconfigured: null,
    instances: [],
    queue: null,
    last_24h: NO_STATS,
    ...over,
  };
}

const NOW = Date.parse("2026-11-30T06:00:10Z");
const view: EnginesView = {
  generated_at: "2026-11-30T06:00:10Z",
  window_hours: 24,
  engines: [
    engine("faster-whisper", {
      instances: [
        {
          instance_id: "faster-whisper-host-7",
          host: "host",
          pid: 7,
          started_at: "2026-11-30T05:00:00Z",
          last_heartbeat: "2026-11-30T06:00:09Z",
          heartbeat_age_seconds: 1.2,
          current_task_id: "0123456789abcdef",
          current_task_started_at: "2026-11-30T06:00:00Z",
          tasks_done: 12,
          tasks_failed: 1,
        },
      ],
      queue: { stream: "dalston:stream:faster-whisper", length: 20, pending: 1, lag: 0 },
      last_24h: { completed: 12, failed: 1, mean_run_seconds: 4.33, p95_run_seconds: 0.25, mean_queue_wait_seconds: 125 },
    }),
    engine("merge", { stage: "merge", queue: { stream: "dalston:stream:merge", length: 3, pending: 0, lag: 3 } }),
  ],
  realtime: { status: "unavailable", capacity: 0, active_sessions: 0, available_slots: 0, models: [], workers: [] },
};

function renderBody() {
  return render(
    <MantineProvider>
      <MemoryRouter>
        <EnginesBody view={view} fetchedAt={NOW} now={NOW + 2000} />
      </MemoryRouter>
    </MantineProvider>,
  );
}

describe("EnginesBody", () => {
  it("flags queued work with no instance running", () => {
    const { container } = renderBody();
    expect(screen.getByTestId("stalled-alert").textContent).toContain("merge (3 waiting)");
    const merge = container.querySelector('tr[data-engine-id="merge"]') as HTMLElement;
    expect(merge.getAttribute("data-health")).toBe("stalled");
    expect(within(merge).getByText("no instance running")).toBeTruthy();
    expect(within(merge).getByText("3 waiting")).toBeTruthy();
  });

  it("shows live instances with their heartbeat age, task and numbers with units", () => {
    const { container } = renderBody();
    const fw = container.querySelector('tr[data-engine-id="faster-whisper"]') as HTMLElement;
    expect(fw.getAttribute("data-health")).toBe("busy");
    expect(within(fw).getByText("4.3 s")).toBeTruthy();
    expect(within(fw).getByText("250 ms")).toBeTruthy();
    expect(within(fw).getByText("2 min 5 s")).toBeTruthy();
    const instance = container.querySelector('tr[data-instance-engine="faster-whisper"]') as HTMLElement;
    expect(within(instance).getByText("3.2 s ago")).toBeTruthy(); // 1.2 s when fetched, 2 s since
    expect(within(instance).getByText("01234567")).toBeTruthy();
    expect(screen.getByText("No realtime worker is registered.")).toBeTruthy();
  });
});
