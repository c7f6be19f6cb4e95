"""The operators' console: browser sessions made from an API key, the aggregate views the
SPA needs, and serving the built SPA itself. Kept free of imports so gateway.auth can use
the session store without a cycle."""
