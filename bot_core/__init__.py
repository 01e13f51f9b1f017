"""botctl's bot: the WhatsApp webhook, the conversation and its storage.

Importable and deployable without the CLI: nothing here imports typer, rich,
azure-monitor-query, ``migrations`` or ``kql``.
"""

__version__ = "0.1.0"
