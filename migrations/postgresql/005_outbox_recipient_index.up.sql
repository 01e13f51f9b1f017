-- 005_outbox_recipient_index: a recipient's unsent replies found by index. The commit asks
-- whether an earlier reply to the same recipient is still unsent before it inserts a reply
-- already claimed (bot_core/outbox.py insert_replies); without this index that question
-- read every unsent row of every recipient, which grows with the backlog under load.
CREATE INDEX IX_MensajesSalientes_Telefono_Estado ON MensajesSalientes (Telefono, Estado);
