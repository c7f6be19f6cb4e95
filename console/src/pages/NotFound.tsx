import { Button, Stack, Text, Title } from "@mantine/core";
import { Link } from "react-router-dom";

export default function NotFound() {
  return (
    <Stack align="flex-start" gap="sm">
      <Title order={3}>Page not found</Title>
      <Text c="dimmed">There is no console page at this address.</Text>
      <Button component={Link} to="/" variant="default">
        Go to the dashboard
      </Button>
    </Stack>
  );
}
