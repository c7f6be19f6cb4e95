"""`python -m orchestrator`: run the orchestrator until SIGTERM/SIGINT."""

import asyncio

from orchestrator.service import main

if __name__ == "__main__":
    asyncio.run(main())
