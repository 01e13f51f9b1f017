"""botctl's command line: thin commands over bot_core, migrations and kql."""
