import { Navigate, Outlet, useLocation } from "react-router-dom";

import { useSession } from "../api/queries";
import { ErrorAlert, PageLoader } from "../components/States";

/** Renders the console when GET /v1/console/session says there is a session; otherwise the login page. */
export function RequireSession() {
  const session = useSession();
  const location = useLocation();
  if (session.isPending) return <PageLoader label="Checking your session…" />;
  if (session.isError && session.data === undefined) {
    return (
      <div style={{ maxWidth: 560, margin: "64px auto", padding: 16 }}>
        <ErrorAlert error={session.error} title="Could not check your session" />
      </div>
    );
  }
  if (!session.data) {
    const from = location.pathname + location.search;
    return <Navigate to="/login" replace state={{ from }} />;
  }
  return <Outlet />;
}
