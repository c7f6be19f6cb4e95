"""The client commands of `dalston`: each module is one command or command group."""
