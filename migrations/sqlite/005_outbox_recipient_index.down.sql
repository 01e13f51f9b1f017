-- 005_outbox_recipient_index down.
DROP INDEX IX_MensajesSalientes_Telefono_Estado;
