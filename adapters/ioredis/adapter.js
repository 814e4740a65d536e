// A redisload instance adapter on ioredis, shaped as the trading platform's
// TypeScript RedisEventBridge: one publisher and one subscriber connection,
// an instance ID that every published event carries as its source, its own
// echoes dropped by that ID, reconnection with capped backoff. redisload
// hands it every payload to publish and does all the accounting on what it
// reports (docs/instance-protocol.md):
//
//   redisload --instance-cmd 'node adapters/ioredis/adapter.js'
//
// To measure your own bridge, replace RedisEventBridge below with yours and
// keep the protocol loop at the bottom.
"use strict";

const readline = require("node:readline");
let Redis, version;
try {
  Redis = require("ioredis");
  ({ version } = require("ioredis/package.json"));
} catch (err) {
  if (err.code !== "MODULE_NOT_FOUND") throw err;
  // One line redisload quotes, naming what to do.
  process.stderr.write(`error: ioredis is not installed: run make adapters (npm ci in ${__dirname})\n`);
  process.exit(1);
}

// say writes one line of the protocol to redisload.
function say(msg) {
  process.stdout.write(JSON.stringify(msg) + "\n");
}

// The seed's backoff: 50 ms doubling to 2 s, retried for ever (a bridge of a
// long-running service never gives up on Redis).
const retryStrategy = (times) => Math.min(50 * 2 ** (times - 1), 2000);

class RedisEventBridge {
  constructor(hello) {
    this.instanceId = hello.instance_id;
    this.redis = hello.redis;
    this.sharded = this.redis.pubsub === "sharded";
    this.channels = [];
    this.resubscribing = false;
    this.publisher = this.client(hello.client_names.publisher);
    this.subscriber = this.client(hello.client_names.subscriber, this.sharded);
  }

  // client is a connection of the hello's topology, named as redisload asks
  // (CLIENT SETNAME), which its client-kill fault finds it by.
  client(connectionName, shardedSubscribers = false) {
    const url = new URL(this.redis.url);
    const auth = {
      username: decodeURIComponent(url.username) || undefined,
      password: decodeURIComponent(url.password) || undefined,
      tls: url.protocol === "rediss:" ? {} : undefined,
    };
    const common = { ...auth, connectionName, retryStrategy, lazyConnect: true };
    switch (this.redis.topology) {
      case "cluster":
        return new Redis.Cluster([{ host: url.hostname, port: Number(url.port) }], {
          redisOptions: common,
          clusterRetryStrategy: retryStrategy,
          shardedSubscribers,
          lazyConnect: true,
        });
      case "sentinel":
        return new Redis({
          ...common,
          sentinels: this.redis.sentinels.map((a) => {
            const i = a.lastIndexOf(":");
            return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
          }),
          name: this.redis.sentinel_master,
          sentinelPassword: this.redis.sentinel_password || undefined,
          db: Number(url.pathname.slice(1)) || 0,
        });
    }
    return new Redis(this.redis.url, common);
  }

  async connect() {
    await Promise.all([this.publisher.connect(), this.subscriber.connect()]);
    const message = (channel, payload) => this.deliver(channel, payload);
    this.subscriber.on(this.sharded ? "smessage" : "message", message);
    // ioredis resubscribes by itself once it reconnects (autoResubscribe).
    // It says "close" at the loss (again at each failed attempt) and
    // "ready" at the new connection, before its SUBSCRIBEs are answered; a
    // PING queued behind them is answered after them, so its reply is the
    // resubscription's confirmation. A cluster's subscriber moves between
    // nodes silently: ioredis tells nothing of that.
    let lastError = "";
    this.subscriber.on("error", (err) => {
      lastError = err.message;
      process.stderr.write(`subscriber: ${err.message}\n`);
    });
    this.subscriber.on("close", () => {
      if (this.channels.length) say({ type: "event", event: "disconnected", detail: lastError || "connection closed" });
    });
    this.subscriber.on("ready", () => {
      if (!this.channels.length) return;
      say({ type: "event", event: "reconnected" });
      if (this.redis.topology === "cluster") {
        say({ type: "event", event: "resubscribed" });
        return;
      }
      this.subscriber.ping().then(
        () => say({ type: "event", event: "resubscribed" }),
        (err) => process.stderr.write(`subscriber: ${err.message}\n`),
      );
    });
    this.publisher.on("error", (err) => process.stderr.write(`publisher: ${err.message}\n`));
  }

  async subscribe(channels) {
    if (this.sharded && this.redis.topology === "cluster") {
      // One SSUBSCRIBE may name one slot's channels only (CROSSSLOT).
      for (const ch of channels) await this.subscriber.ssubscribe(ch);
    } else if (this.sharded) {
      await this.subscriber.ssubscribe(...channels);
    } else {
      await this.subscriber.subscribe(...channels);
    }
    this.channels.push(...channels);
  }

  // deliver is the bridge's message handler: its own echoes dropped by the
  // instance ID, as the seed's bridge does, everything else handed on.
  deliver(channel, payload) {
    const receivedNs = unixNs();
    let source;
    try {
      source = JSON.parse(payload).source;
    } catch {
      // not an event of ours: the application would get it as it is
    }
    if (source === this.instanceId) {
      say({ type: "filtered", payload });
      return;
    }
    // received_ns as a number loses the nanoseconds' last digits in
    // JSON.stringify's doubles; written into the line as digits instead.
    process.stdout.write(
      JSON.stringify({ type: "message", channel, payload }).slice(0, -1) + `,"received_ns":${receivedNs}}\n`,
    );
  }

  publish(channel, payload) {
    return this.sharded ? this.publisher.spublish(channel, payload) : this.publisher.publish(channel, payload);
  }

  async disconnect() {
    await Promise.allSettled([this.publisher.quit(), this.subscriber.quit()]);
  }
}

// unixNs is the wall clock in Unix ns, to the microsecond: Date.now()'s
// milliseconds would stamp a message up to 1 ms before it was sent, which
// redisload counts as forged. performance's origin is the process's start
// on the wall clock, to the µs, and its now() monotonic since.
function unixNs() {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

// outcome is a publish's answer: refused by the server (a ReplyError), or
// unknown (no reply: the connection broke or the command timed out).
function outcome(id, err) {
  if (!err) return { type: "published", id };
  if (err instanceof Redis.ReplyError) return { type: "published", id, error: err.message };
  return { type: "published", id, unknown: err.message };
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let bridge;
  for await (const line of lines) {
    const m = JSON.parse(line);
    switch (m.type) {
      case "hello":
        bridge = new RedisEventBridge(m);
        try {
          await bridge.connect();
        } catch (err) {
          say({ type: "error", error: err.message });
          process.exit(1);
        }
        say({ type: "hello", protocol: 1, client: "ioredis", client_version: version });
        break;
      case "subscribe":
        try {
          await bridge.subscribe(m.channels);
          say({ type: "subscribed", channels: m.channels });
        } catch (err) {
          say({ type: "error", error: err.message });
        }
        break;
      case "publish":
        // Not awaited: ioredis pipelines concurrent commands on its
        // connection, as an application's publishes would be.
        bridge.publish(m.channel, m.payload).then(
          () => say(outcome(m.id)),
          (err) => say(outcome(m.id, err)),
        );
        break;
      case "ping":
        bridge.publisher.ping().then(
          () => say({ type: "pong", id: m.id }),
          (err) => say({ type: "pong", id: m.id, error: err.message }),
        );
        break;
      case "stop":
        await bridge?.disconnect();
        process.exit(0);
    }
  }
  await bridge?.disconnect();
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`ioredis adapter: ${err.stack}\n`);
  process.exit(1);
});
