"""The Redis cache (core/redis_cache.py) shares one client per pool across request threads."""

from concurrent.futures import ThreadPoolExecutor

from django.core.cache import caches


def test_threads_sharing_the_client_each_read_their_own_values(redis_url):
    cache = caches["default"]
    assert type(cache).__module__ == "core.redis_cache"

    def write_then_read(thread: int) -> list:
        keys = {f"redis-cache-test:{thread}:{index}": [thread, index] for index in range(50)}
        cache.set_many(keys, timeout=30)
        return [cache.get(key) == value for key, value in keys.items()] + [cache.get_many(list(keys)) == keys]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(write_then_read, range(16)))

    assert all(all(result) for result in results)
    cache.delete_many([f"redis-cache-test:{thread}:{index}" for thread in range(16) for index in range(50)])


def test_a_cache_that_lost_its_server_fails_and_recovers_when_it_is_back(redis_url):
    """One client is kept, so it must not keep a broken connection: redis-py's pool replaces it."""
    cache = caches["default"]
    cache.set("redis-cache-test:reconnect", 1)
    client = cache._cache.get_client(write=True)
    client.client_kill_filter(_id=client.client_id(), skipme=False)  # the pooled connection

    assert cache.get("redis-cache-test:reconnect") == 1
    assert cache._cache.get_client(write=True) is client
    cache.delete("redis-cache-test:reconnect")
