"""What the realtime services share: the native wire protocol (`protocol`), the worker
registry and session allocation in Redis (`registry`), and the session recording layout in
object storage (`recording`). The gateway, the realtime workers and the session router meet
here and import nothing of each other."""
