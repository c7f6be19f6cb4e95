import { Select } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useNavigate } from "react-router-dom";

import { errorMessage } from "../api/client";
import { useSession } from "../api/queries";
import { useSwitchTenant, useTenants } from "../api/tenants";

/** Admin sessions: the tenant whose jobs, sessions and webhooks the console shows. */
export function TenantSwitcher() {
  const { data: session } = useSession();
  const admin = session?.scopes.includes("admin") ?? false;
  const tenants = useTenants(admin);
  const switchTenant = useSwitchTenant();
  const navigate = useNavigate();
  if (!session || !admin || !tenants.data || tenants.data.length < 2) return null;
  const acting = session.tenant_id !== session.key_tenant_id;
  return (
    <Select
      size="xs"
      w={200}
      aria-label="Tenant the console acts for"
      data-testid="tenant-switcher"
      data={tenants.data.map((t) => ({ value: t.id, label: t.id === session.key_tenant_id ? `${t.name} (this key's)` : t.name }))}
      value={session.tenant_id}
      allowDeselect={false}
      searchable
      disabled={switchTenant.isPending}
      styles={acting ? { input: { borderColor: "var(--mantine-color-orange-6)" } } : undefined}
      onChange={(value) => {
        if (!value || value === session.tenant_id) return;
        switchTenant.mutate(value === session.key_tenant_id ? null : value, {
          onSuccess: (next) => {
            notifications.show({ title: "Tenant switched", message: `The console now acts for ${next.tenant_name}.` });
            navigate("/");
          },
          onError: (err) => notifications.show({ color: "red", title: "Could not switch tenant", message: errorMessage(err) }),
        });
      }}
    />
  );
}
