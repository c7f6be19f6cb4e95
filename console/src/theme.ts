import { DEFAULT_THEME, createTheme } from "@mantine/core";
import type { CSSVariablesResolver } from "@mantine/core";

export const theme = createTheme({
  primaryColor: "blue",
  // Filled buttons and badges use shade 8 in light mode: white on Mantine's shade 6 is
  // under 4.5:1 for most colours (WCAG AA; the browser test's axe-core scan checks it).
  primaryShade: { light: 8, dark: 8 },
  defaultRadius: "sm",
  fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', 'DejaVu Sans', sans-serif",
  fontFamilyMonospace: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace",
  headings: { fontWeight: "650" },
  components: {
    // A link inside text must not differ by colour alone (axe: link-in-text-block).
    Anchor: { defaultProps: { underline: "always" } },
    Table: { defaultProps: { verticalSpacing: 6, horizontalSpacing: "sm", fz: "sm" } },
    Paper: { defaultProps: { withBorder: true, radius: "sm" } },
  },
});

// Text in a colour (`c="red"`, light and outline badges and alerts, status codes) uses
// shade 6 in light mode, which is too pale on white for small text (yellow: 1.9:1);
// "dimmed" text is 3.3:1 (light) and 4.0:1 (dark); white on the shade-8 fill of the pale
// hues is 2.5-4.4:1. These keep every colour's hue and reach at least 5:1 (WCAG AA asks
// 4.5:1) on white, on paper and on the light variants' tinted backgrounds.
const COLORS = Object.keys(DEFAULT_THEME.colors).filter((name) => name !== "dark" && name !== "gray");
const PALE_FILLS = ["cyan", "teal", "green", "lime", "yellow", "orange"];

function darker(color: string, percent: number): string {
  return `color-mix(in srgb, var(--mantine-color-${color}-9) ${percent}%, black)`;
}

function readable(color: string): string {
  return darker(color, 70);
}

export const cssVariablesResolver: CSSVariablesResolver = () => ({
  variables: Object.fromEntries(
    PALE_FILLS.flatMap((color) => [
      [`--mantine-color-${color}-filled`, darker(color, 75)],
      [`--mantine-color-${color}-filled-hover`, darker(color, 65)],
    ]),
  ),
  light: {
    "--mantine-color-dimmed": "var(--mantine-color-gray-7)",
    ...Object.fromEntries(
      COLORS.flatMap((color) => [
        [`--mantine-color-${color}-text`, readable(color)],
        [`--mantine-color-${color}-light-color`, readable(color)],
        [`--mantine-color-${color}-outline`, readable(color)],
      ]),
    ),
  },
  dark: {
    "--mantine-color-dimmed": "var(--mantine-color-dark-1)",
  },
});
