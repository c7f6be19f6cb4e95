import { ActionIcon, Alert, Button, Code, CopyButton, Group, Modal, Stack, Tooltip } from "@mantine/core";
import { IconAlertTriangle, IconCheck, IconCopy } from "@tabler/icons-react";
import type { ReactNode } from "react";

/** A secret the server returns once (an API key, a webhook signing secret), with a copy button. */
export function SecretOnceModal({
  secret,
  title,
  warning,
  summary,
  copyLabel,
  testId,
  onClose,
}: {
  secret: string | null;
  title: string;
  warning: ReactNode;
  summary: ReactNode;
  copyLabel: string;
  testId: string;
  onClose: () => void;
}) {
  return (
    <Modal opened={secret !== null} onClose={onClose} title={title} centered size="lg" closeOnClickOutside={false}>
      {secret !== null && (
        <Stack gap="sm">
          <Alert color="yellow" variant="light" icon={<IconAlertTriangle size={18} />} title="Copy it now: it will not be shown again">
            {warning}
          </Alert>
          {summary}
          <Group gap="xs" wrap="nowrap" align="center">
            <Code block style={{ flex: 1, wordBreak: "break-all", whiteSpace: "pre-wrap" }} data-testid={testId}>
              {secret}
            </Code>
            <CopyButton value={secret} timeout={2000}>
              {({ copied, copy }) => (
                <Tooltip label={copied ? "Copied" : copyLabel} withArrow>
                  <ActionIcon variant="light" color={copied ? "teal" : "blue"} onClick={copy} size="lg" aria-label={copyLabel}>
                    {copied ? <IconCheck size={18} /> : <IconCopy size={18} />}
                  </ActionIcon>
                </Tooltip>
              )}
            </CopyButton>
          </Group>
          <Group justify="flex-end">
            <Button onClick={onClose} data-testid="secret-done">
              I have stored it
            </Button>
          </Group>
        </Stack>
      )}
    </Modal>
  );
}
