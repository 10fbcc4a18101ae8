"""Django's Redis cache backend, keeping one redis client per connection pool.

Django's client builds a new `redis.Redis` for every cache call, and with it redis-py's table of
response callbacks: 4% of a progress PATCH's CPU in bench/progress.py, for the few cache calls a
request makes. A `redis.Redis` is safe to share between threads (each command borrows a connection
from the pool), so each pool gets one, made on first use.
"""

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))  # the pools live as long as this client
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
