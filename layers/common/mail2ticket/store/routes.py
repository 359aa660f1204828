"""Which push inbox owns a recipient: one item per address or domain, in the inboxes table.

A pushed mail finds its inboxes with one batch read of its recipients' and their domains' items, however many
inboxes there are. The items are written with the inbox (`config.save_inbox`), in the same transaction, on the
condition that no other inbox owns the recipient. An inbox item written by other means (the console,
`put-item`) has none: the poll of the inbox then fails saying so.
"""

from collections.abc import Iterable

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from mail2ticket.mail.envelope import domain_of
from mail2ticket.settings import get_settings
from mail2ticket.store.models import hash_key_attribute

# Inbox ids cannot contain '#': a route's key never names an inbox (nor `#global`).
ROUTE_PREFIX = "#route#"


class RouteItem(Model):
    """`#route#<address or domain>` -> the push inbox that receives its mail."""

    class Meta:
        table_name = get_settings().inboxes_table

    inbox_id = hash_key_attribute()
    owner = UnicodeAttribute()


def route_key(recipient: str) -> str:
    return ROUTE_PREFIX + recipient


def routes_of(recipients: Iterable[str]) -> dict[str, str]:
    """recipient -> its owner, for the recipients that have a route (owned by this inbox or another)."""
    keys = {route_key(r): r for r in recipients}
    return {keys[item.inbox_id]: item.owner for item in RouteItem.batch_get(list(keys))}


def owners(addresses: Iterable[str]) -> dict[str, str]:
    """address -> the inbox that owns it: the inbox naming the address, else the one owning its domain."""
    wanted = list(dict.fromkeys(addresses))
    routes = routes_of({r for a in wanted for r in (a, domain_of(a))})
    found = {}
    for address in wanted:
        owner = routes.get(address) or routes.get(domain_of(address))
        if owner:
            found[address] = owner
    return found


def unrouted(inbox_id: str, recipients: Iterable[str]) -> dict[str, str | None]:
    """The recipients of an inbox whose route is not its own: None when there is none (an item written
    without `save_inbox`), else the inbox that owns it."""
    recipients = list(recipients)
    found = routes_of(recipients)
    return {r: found.get(r) for r in recipients if found.get(r) != inbox_id}
