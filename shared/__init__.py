"""Code shared by every Dalston service: settings, database, streams, storage, contracts."""
