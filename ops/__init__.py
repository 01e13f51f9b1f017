"""Operations libraries behind botctl loadtest and checklist (not deployed with the bot)."""
