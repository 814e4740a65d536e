#!/usr/bin/python3
"""A redisload instance adapter on redis-py, as Debian packages it
(python3-redis; no pip needed).

A publisher client and a PubSub, as redis-py's docs show, the instance's
own echoes dropped by its ID. redisload hands it every payload to publish
and does all the accounting on what it reports
(docs/instance-protocol.md):

    redisload --instance-cmd '/usr/bin/python3 adapters/redis-py/adapter.py'

Standalone, Cluster and Sentinel with classic pub/sub; redis-py 4.3.4 has
no sharded pub/sub (SPUBLISH/SSUBSCRIBE came in 5.0.0), which the hello's
answer says.
"""

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

try:
    import redis
    from redis.cluster import RedisCluster
    from redis.sentinel import Sentinel
except ImportError as e:
    # One line redisload quotes, naming what to install.
    sys.exit(f"error: redis-py is not installed for {sys.executable} ({e}): apt-get install python3-redis")

_out = threading.Lock()
_stopping = threading.Event()


def say(**msg):
    line = json.dumps(msg, separators=(",", ":")) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


def client(hello, name):
    """A client of the hello's topology, named as redisload asks (CLIENT
    SETNAME), which its client-kill fault finds it by."""
    r = hello["redis"]
    if r["topology"] == "cluster":
        return RedisCluster.from_url(r["url"], client_name=name)
    if r["topology"] == "sentinel":
        url = redis.connection.parse_url(r["url"])
        sentinels = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in r["sentinels"]]
        s = Sentinel(sentinels, sentinel_kwargs={"password": r.get("sentinel_password") or None})
        return s.master_for(r["sentinel_master"], client_name=name, username=url.get("username"),
                            password=url.get("password"), db=url.get("db", 0))
    return redis.Redis.from_url(r["url"], client_name=name)


def receive(pubsub, self_id, channels):
    """Hands every message to redisload but the instance's own. redis-py's
    PubSub reconnects at its next read and subscribes again; the read that
    fails is the disconnection, the confirmations that follow are the
    resubscription."""
    confirmed = len(channels)
    while True:
        try:
            m = pubsub.get_message(timeout=1.0)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            if _stopping.is_set():
                return
            if confirmed:
                say(type="event", event="disconnected", detail=str(e))
            confirmed = 0
            time.sleep(0.05)
            continue
        except (ValueError, AttributeError):
            return  # closed
        if m is None:
            continue
        if m["type"] == "message":
            now = time.time_ns()
            payload = m["data"].decode()
            try:
                source = json.loads(payload).get("source")
            except (ValueError, AttributeError):
                source = None  # not an event of ours: the application gets it
            if source == self_id:
                say(type="filtered", payload=payload)
            else:
                say(type="message", channel=m["channel"].decode(), payload=payload, received_ns=now)
        elif m["type"] == "subscribe" and confirmed < len(channels):
            if confirmed == 0:
                say(type="event", event="reconnected")
            confirmed += 1
            if confirmed == len(channels):
                say(type="event", event="resubscribed")


def publish(pub, m):
    try:
        pub.publish(m["channel"], m["payload"])
        say(type="published", id=m["id"])
    except redis.ResponseError as e:  # the server refused it
        say(type="published", id=m["id"], error=str(e))
    except Exception as e:  # no reply: it may have been published
        say(type="published", id=m["id"], unknown=str(e) or type(e).__name__)


def main():
    hello = json.loads(sys.stdin.readline())
    if hello["redis"]["pubsub"] == "sharded":
        say(type="error", error=f"sharded pub/sub is not in redis-py {redis.__version__} (it came in 5.0.0)")
        return 1
    try:
        pub = client(hello, hello["client_names"]["publisher"])
        sub = client(hello, hello["client_names"]["subscriber"])
        pub.ping()
    except Exception as e:
        say(type="error", error=str(e))
        return 1
    say(type="hello", protocol=1, client="redis-py", client_version=redis.__version__)
    pubsub = None
    # redis-py's clients are blocking: publishes run on a pool of threads,
    # each on a connection of the client's pool.
    pool = ThreadPoolExecutor(max_workers=16)
    for line in sys.stdin:
        m = json.loads(line)
        if m["type"] == "subscribe":
            try:
                pubsub = sub.pubsub()
                pubsub.subscribe(*m["channels"])
                # Redis's confirmation of every channel, as the barrier needs.
                for _ in m["channels"]:
                    while (c := pubsub.get_message(timeout=5.0)) is None or c["type"] != "subscribe":
                        pass
            except Exception as e:
                say(type="error", error=str(e))
                continue
            threading.Thread(target=receive, args=(pubsub, hello["instance_id"], m["channels"]), daemon=True).start()
            say(type="subscribed", channels=m["channels"])
        elif m["type"] == "publish":
            pool.submit(publish, pub, m)
        elif m["type"] == "ping":
            pool.submit(lambda i=m["id"]: say(type="pong", id=i) if pub.ping() else None)
        elif m["type"] == "stop":
            _stopping.set()
            break
    pool.shutdown(wait=False, cancel_futures=True)
    if pubsub is not None:
        pubsub.close()
    pub.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
