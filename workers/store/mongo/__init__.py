"""The MongoDB store on PyMongo's async API; ``pymongo`` is imported only inside this folder."""

from workers.store.mongo.store import MongoStore

__all__ = ["MongoStore"]
