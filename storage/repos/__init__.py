"""Repositories, one per aggregate; each is constructed with a storage.db.Tx."""

from storage.repos.agencies import Agency, AgencyRepo
from storage.repos.deliveries import Delivery, DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.statuses import Status, StatusRepo
from storage.repos.tokens import Principal, TokenInfo, TokenRepo

__all__ = [
    "Agency",
    "AgencyRepo",
    "Delivery",
    "DeliveryRepo",
    "Document",
    "DocumentRepo",
    "Principal",
    "Status",
    "StatusRepo",
    "TokenInfo",
    "TokenRepo",
]
