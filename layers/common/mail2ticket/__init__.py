"""mail2ticket: turns the mail arriving in helpdesk mailboxes into tickets."""
