import { AppShell, Badge, Burger, Button, Group, NavLink, Text, Tooltip } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import {
  IconAdjustments,
  IconBrain,
  IconBroadcast,
  IconCpu,
  IconGauge,
  IconKey,
  IconList,
  IconLogout,
  IconMicrophone,
  IconShieldCheck,
  IconUpload,
  IconWebhook,
} from "@tabler/icons-react";
import { useQueryClient } from "@tanstack/react-query";
import { Suspense, useState } from "react";
import { NavLink as RouterNavLink, Outlet, useLocation, useNavigate } from "react-router-dom";

import { errorMessage, isUnauthorized } from "../api/client";
import { logout } from "../api/endpoints";
import { endSession, useSession } from "../api/queries";
import { hasScope } from "../auth/scopes";
import { PageLoader } from "./States";
import { TenantSwitcher } from "./TenantSwitcher";

// `scope`: shown only to sessions whose key has it (the API refuses the page's calls otherwise).
const NAV: { to: string; label: string; icon: typeof IconGauge; end?: boolean; scope?: string }[] = [
  { to: "/", label: "Dashboard", icon: IconGauge, end: true },
  { to: "/jobs", label: "Jobs", icon: IconList },
  { to: "/new", label: "New transcription", icon: IconUpload, end: true },
  { to: "/sessions", label: "Realtime sessions", icon: IconMicrophone, scope: "realtime" },
  { to: "/live", label: "Live transcription", icon: IconBroadcast, scope: "realtime" },
  { to: "/keys", label: "API keys", icon: IconKey, scope: "admin" },
  { to: "/audit", label: "Audit log", icon: IconShieldCheck, scope: "admin" },
  { to: "/webhooks", label: "Webhooks", icon: IconWebhook, scope: "webhooks" },
  { to: "/engines", label: "Engines", icon: IconCpu, scope: "admin" },
  { to: "/models", label: "Models", icon: IconBrain, scope: "admin" },
  { to: "/settings", label: "Settings", icon: IconAdjustments, scope: "admin" },
];

function Logo() {
  return (
    <svg width="22" height="22" viewBox="0 0 32 32" aria-hidden="true">
      <rect width="32" height="32" rx="7" fill="var(--mantine-color-blue-filled)" />
      <path d="M7 20v-8M12 24V8M17 19v-6M22 22V10M26 18v-4" stroke="#fff" strokeWidth="2.6" strokeLinecap="round" />
    </svg>
  );
}

export function Layout() {
  const [opened, { toggle, close }] = useDisclosure();
  const { data: session } = useSession();
  const client = useQueryClient();
  const navigate = useNavigate();
  const location = useLocation();
  const [leaving, setLeaving] = useState(false);

  async function onLogout() {
    setLeaving(true);
    try {
      await logout();
    } catch (err) {
      // 401: the session had already ended, which is what logging out wants.
      if (!isUnauthorized(err)) notifications.show({ color: "red", title: "Logout failed on the server", message: errorMessage(err) });
    } finally {
      setLeaving(false);
      endSession(client);
      navigate("/login", { replace: true });
    }
  }

  const keyLabel = session?.key_name || session?.key_id.slice(0, 8);

  return (
    <AppShell header={{ height: 52 }} navbar={{ width: 210, breakpoint: "sm", collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Logo />
            <Text fw={700}>Dalston</Text>
            <Text c="dimmed" size="sm" visibleFrom="xs">
              console
            </Text>
          </Group>
          <Group gap="sm" wrap="nowrap">
            <TenantSwitcher />
            {session && (
              <Tooltip label={`Scopes: ${session.scopes.join(", ")} · tenant ${session.tenant_name ?? session.tenant_id}`} withArrow>
                <Group gap={6} wrap="nowrap" visibleFrom="sm" data-testid="session-info">
                  <Text size="sm" c="dimmed">
                    key
                  </Text>
                  <Text size="sm" ff="monospace">
                    {keyLabel}
                  </Text>
                  {session.scopes.includes("admin") && (
                    <Badge size="xs" variant="outline" color="grape">
                      admin
                    </Badge>
                  )}
                </Group>
              </Tooltip>
            )}
            <Button variant="default" size="xs" leftSection={<IconLogout size={14} />} onClick={onLogout} loading={leaving}>
              Log out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>

      <AppShell.Navbar p="xs">
        {NAV.filter((item) => !item.scope || hasScope(session, item.scope)).map((item) => (
          <NavLink
            key={item.to}
            component={RouterNavLink}
            to={item.to}
            end={item.end}
            label={item.label}
            leftSection={<item.icon size={18} stroke={1.6} />}
            onClick={close}
            active={item.end ? location.pathname === item.to : location.pathname.startsWith(item.to)}
          />
        ))}
      </AppShell.Navbar>

      <AppShell.Main>
        <Suspense fallback={<PageLoader />}>
          <Outlet />
        </Suspense>
      </AppShell.Main>
    </AppShell>
  );
}
