// Actions on a finished job (gateway/job_actions.py): name its speakers, run it again.
// Both need the jobs:write scope.

import { notifications } from "@mantine/notifications";
import { useMutation, useQueryClient } from "@tanstack/react-query";

import { withSpeakerName } from "../lib/speakers";
import { api, errorMessage } from "./client";
import { paths } from "./endpoints";
import { keys } from "./queries";
import type { JobDetail } from "./types";

export function renameSpeakers(id: string, names: Record<string, string | null>): Promise<JobDetail> {
  return api<JobDetail>(`${paths.job(id)}/speakers`, { method: "PUT", json: { names } });
}

export function rerunJob(id: string): Promise<JobDetail> {
  return api<JobDetail>(`${paths.job(id)}/rerun`, { method: "POST" });
}

interface Rename {
  /** The pipeline's speaker id (speaker_0, channel_1). */
  speaker: string;
  /** The new name; null gives the speaker its id back. */
  name: string | null;
}

/** Rename one speaker, showing the name at once and putting the old one back if the server refuses. */
export function useRenameSpeaker(jobId: string) {
  const client = useQueryClient();
  const key = keys.job(jobId);
  return useMutation({
    mutationFn: ({ speaker, name }: Rename) => renameSpeakers(jobId, { [speaker]: name }),
    onMutate: async ({ speaker, name }: Rename) => {
      await client.cancelQueries({ queryKey: key });
      const previous = client.getQueryData<JobDetail>(key);
      if (previous) client.setQueryData<JobDetail>(key, withSpeakerName(previous, speaker, name));
      return { previous };
    },
    onError: (error, _rename, context) => {
      if (context?.previous) client.setQueryData(key, context.previous);
      notifications.show({ color: "red", title: "The speaker was not renamed", message: errorMessage(error) });
    },
    onSuccess: (detail) => client.setQueryData(key, detail),
  });
}
