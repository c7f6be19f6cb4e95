import "@mantine/charts/styles.layer.css";

import { BarChart } from "@mantine/charts";

import type { HourBucket } from "../../api/types";
import { formatHour } from "../../lib/format";

/** Jobs created, completed and failed in each of the last 24 hours. */
export default function HourlyChart({ buckets }: { buckets: HourBucket[] }) {
  const data = buckets.map((b) => ({ hour: formatHour(b.hour), created: b.created, completed: b.completed, failed: b.failed }));
  return (
    <BarChart
      h={220}
      data={data}
      dataKey="hour"
      withLegend
      legendProps={{ verticalAlign: "top", height: 28 }}
      tickLine="y"
      gridAxis="y"
      barProps={{ radius: 2 }}
      yAxisProps={{ allowDecimals: false, width: 36 }}
      xAxisProps={{ interval: 2 }}
      series={[
        { name: "created", label: "created", color: "blue.6" },
        { name: "completed", label: "completed", color: "green.6" },
        { name: "failed", label: "failed", color: "red.6" },
      ]}
    />
  );
}
