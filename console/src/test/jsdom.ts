import { cleanup } from "@testing-library/react";
import { afterEach, beforeAll } from "vitest";

/** For a component test file under jsdom: the browser APIs Mantine reads that jsdom lacks,
 * and an unmounted tree after each test. Call once at the top level of the file. */
export function setUpMantineInJsdom(): void {
  beforeAll(() => {
    window.matchMedia ??= ((query: string) => ({
      matches: false,
      media: query,
      onchange: null,
      addListener: () => {},
      removeListener: () => {},
      addEventListener: () => {},
      removeEventListener: () => {},
      dispatchEvent: () => false,
    })) as typeof window.matchMedia;
    globalThis.ResizeObserver ??= class {
      observe() {}
      unobserve() {}
      disconnect() {}
    } as unknown as typeof ResizeObserver;
  });
  afterEach(cleanup);
}
