"""The operator CLI `mail2ticket`."""
