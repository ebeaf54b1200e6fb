"""What MongoDB storage (MONGO_URI, docs/storage.md) needs besides settings: AppConfigs that
give contrib and third-party models ObjectId primary keys, and their migrations
(mcpcontrol/mongo/migrations/<app>/, made with `makemigrations` under MONGO_URI, as
django-mongodb-backend prescribes). Nothing here is imported on SQL backends."""
