"""Mailbox connectors (IMAP, IMAP with XOAUTH2, POP3): the only code that talks to mail servers."""
