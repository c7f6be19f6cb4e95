import type { Session } from "../api/types";

/** Whether the session's key grants `scope` (admin grants every scope), as the gateway decides. */
export function hasScope(session: Session | null | undefined, scope: string): boolean {
  if (!session) return false;
  return session.scopes.includes("admin") || session.scopes.includes(scope);
}
