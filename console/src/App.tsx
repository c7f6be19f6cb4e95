import { MantineProvider } from "@mantine/core";
import { Notifications } from "@mantine/notifications";
import { QueryClientProvider } from "@tanstack/react-query";
import { lazy, Suspense, useState } from "react";
import { createBrowserRouter, RouterProvider } from "react-router-dom";

import { createQueryClient } from "./api/queries";
import { RequireSession } from "./auth/RequireSession";
import { Layout } from "./components/Layout";
import { PageLoader } from "./components/States";
import { cssVariablesResolver, theme } from "./theme";

const Login = lazy(() => import("./pages/Login"));
const Dashboard = lazy(() => import("./pages/Dashboard"));
const Jobs = lazy(() => import("./pages/Jobs"));
const JobPage = lazy(() => import("./pages/JobPage"));
const NewJob = lazy(() => import("./pages/NewJob"));
const Keys = lazy(() => import("./pages/Keys"));
const Sessions = lazy(() => import("./pages/Sessions"));
const Live = lazy(() => import("./pages/Live"));
const SessionPage = lazy(() => import("./pages/SessionPage"));
const Audit = lazy(() => import("./pages/Audit"));
const Webhooks = lazy(() => import("./pages/Webhooks"));
const Engines = lazy(() => import("./pages/Engines"));
const Models = lazy(() => import("./pages/Models"));
const Settings = lazy(() => import("./pages/Settings"));
const NotFound = lazy(() => import("./pages/NotFound"));

const router = createBrowserRouter(
  [
    {
      path: "/login",
      element: (
        <Suspense fallback={<PageLoader />}>
          <Login />
        </Suspense>
      ),
    },
    {
      element: <RequireSession />,
      children: [
        {
          element: <Layout />,
          children: [
            { index: true, element: <Dashboard /> },
            { path: "jobs", element: <Jobs /> },
            { path: "jobs/:id", element: <JobPage /> },
            { path: "new", element: <NewJob /> },
            { path: "keys", element: <Keys /> },
            { path: "sessions", element: <Sessions /> },
            { path: "sessions/:id", element: <SessionPage /> },
            { path: "live", element: <Live /> },
            { path: "audit", element: <Audit /> },
            { path: "webhooks", element: <Webhooks /> },
            { path: "engines", element: <Engines /> },
            { path: "models", element: <Models /> },
            { path: "settings", element: <Settings /> },
            { path: "*", element: <NotFound /> },
          ],
        },
      ],
    },
  ],
  { basename: "/console" },
);

export function App() {
  const [client] = useState(createQueryClient);
  return (
    <MantineProvider theme={theme} cssVariablesResolver={cssVariablesResolver} defaultColorScheme="auto">
      <Notifications position="top-right" limit={4} />
      <QueryClientProvider client={client}>
        <RouterProvider router={router} />
      </QueryClientProvider>
    </MantineProvider>
  );
}
