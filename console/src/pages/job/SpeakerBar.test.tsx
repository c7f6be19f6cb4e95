// @vitest-environment jsdom
import { MantineProvider } from "@mantine/core";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";

import { SpeakerBar } from "./SpeakerBar";
import { setUpMantineInJsdom } from "../../test/jsdom";

const speakers = [
  { id: "speaker_0", label: "speaker_0", color: "blue", renamable: true },
  { id: "speaker_1", label: "Bob", color: "teal", renamable: true },
];

setUpMantineInJsdom();

function renderBar(onRename: ((id: string, name: string | null) => Promise<unknown>) | null) {
  return render(
    <MantineProvider>
      <SpeakerBar speakers={speakers} onRename={onRename} noWriteReason="no jobs:write" />
    </MantineProvider>,
  );
}

describe("SpeakerBar", () => {
  it("renames a speaker from the keyboard: open, type, Enter", async () => {
    const onRename = vi.fn(() => Promise.resolve());
    renderBar(onRename);
    fireEvent.click(screen.getByRole("button", { name: "Rename speaker_0" }));
    const input = await screen.findByLabelText("Speaker name");
    fireEvent.change(input, { target: { value: "  Margaret " } });
    fireEvent.submit(input.closest("form")!);
    expect(onRename).toHaveBeenCalledWith("speaker_0", "  Margaret ");
    await waitFor(() => expect(screen.queryByLabelText("Speaker name")).toBeNull());
  });

  it("refuses a name another speaker has, and resets a named speaker to its id", async () => {
    const onRename = vi.fn(() => Promise.resolve());
    renderBar(onRename);
    fireEvent.click(screen.getByRole("button", { name: "Rename speaker_0" }));
    const input = await screen.findByLabelText("Speaker name");
    fireEvent.change(input, { target: { value: "Bob" } });
    expect(await screen.findByText("Another speaker already has this name.")).toBeTruthy();
    expect(screen.getByText("Save name").closest("button")?.disabled).toBe(true);
    fireEvent.submit(input.closest("form")!);
    expect(onRename).not.toHaveBeenCalled();

    fireEvent.click(screen.getByRole("button", { name: "Rename Bob" }));
    fireEvent.click((await screen.findByText("Use speaker_1")).closest("button")!);
    expect(onRename).toHaveBeenCalledWith("speaker_1", null);
  });

  it("disables renaming without the jobs:write scope", () => {
    renderBar(null);
    expect((screen.getByRole("button", { name: "Rename speaker_0" }) as HTMLButtonElement).disabled).toBe(true);
  });
});
