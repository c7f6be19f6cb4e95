/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` proxies the API to a running gateway (DALSTON_URL, default the local one),
// so the session cookie is same-origin exactly as when the gateway serves console/dist.
const gateway = process.env.DALSTON_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      // ws: the live page's realtime WebSocket goes through the proxy as well.
      "/v1": { target: gateway, changeOrigin: false, ws: true },
    },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
