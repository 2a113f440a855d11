"""What the engine keeps in storage beside the event logs, and how it gets there.

Payloads (``_payloads``), the derived status index (``_index``), answering "what is the
output?" from a folded log (``_outputs``), cancel, delete and dropping outputs in storage alone
(``_offline``), retention and gc (``_retention``), how every process opens the same storage
(``_spec``), and running storage coroutines from synchronous code (``_sync``). No Ray here: the CLI and the replay tool can use all of it.
"""
