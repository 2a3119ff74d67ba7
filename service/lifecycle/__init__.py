"""The second half of a certificate's life: what exists (inventory) and when to renew it."""

from service.lifecycle.inventory import Inventory, InventoryPage, InventoryQuery
from service.lifecycle.renewal import RenewalAdvice, RenewalPolicy, renewal_advice

__all__ = ["Inventory", "InventoryPage", "InventoryQuery", "RenewalAdvice", "RenewalPolicy", "renewal_advice"]
