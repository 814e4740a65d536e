// A redisload instance adapter on node-redis (the `redis` package): a
// publisher client and a subscriber client, created as node-redis's docs
// show (createClient and duplicate, createCluster, createSentinel), its own
// echoes dropped by the instance ID. redisload hands it every payload to
// publish and does all the accounting on what it reports
// (docs/instance-protocol.md):
//
//   redisload --instance-cmd 'node adapters/node-redis/adapter.js'
"use strict";

const readline = require("node:readline");
let createClient, createCluster, createSentinel, ErrorReply, version;
try {
  ({ createClient, createCluster, createSentinel, ErrorReply } = require("redis"));
  ({ version } = require("redis/package.json"));
} catch (err) {
  if (err.code !== "MODULE_NOT_FOUND") throw err;
  // One line redisload quotes, naming what to do.
  process.stderr.write(`error: node-redis is not installed: run make adapters (npm ci in ${__dirname})\n`);
  process.exit(1);
}

function say(msg) {
  process.stdout.write(JSON.stringify(msg) + "\n");
}

// unixNs is the wall clock to the microsecond (Date.now() has only
// milliseconds, which would stamp messages before they were sent).
function unixNs() {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

// connectClient makes one client of the hello's topology, named as redisload
// asks (CLIENT SETNAME), which its client-kill fault finds it by.
function connectClient(hello, name) {
  const { redis } = hello;
  const url = new URL(redis.url);
  const auth = {
    username: decodeURIComponent(url.username) || undefined,
    password: decodeURIComponent(url.password) || undefined,
  };
  let client;
  switch (redis.topology) {
    case "cluster":
      client = createCluster({ rootNodes: [{ url: redis.url }], defaults: { ...auth, name } });
      break;
    case "sentinel":
      client = createSentinel({
        name: redis.sentinel_master,
        sentinelRootNodes: redis.sentinels.map((a) => {
          const i = a.lastIndexOf(":");
          return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
        }),
        nodeClientOptions: { ...auth, name, database: Number(url.pathname.slice(1)) || 0 },
        sentinelClientOptions: { password: redis.sentinel_password || undefined },
      });
      break;
    default:
      client = createClient({ url: redis.url, name });
  }
  return client;
}

// watch reports the subscriber's connection as node-redis tells it: an
// "error" when the connection breaks, "ready" once it is back, which
// node-redis emits after it has subscribed again to every channel.
function watch(sub, subscribed) {
  let up = true;
  sub.on("error", (err) => {
    process.stderr.write(`subscriber: ${err.message}\n`);
    if (up && subscribed()) say({ type: "event", event: "disconnected", detail: err.message });
    up = false;
  });
  sub.on("ready", () => {
    if (!up && subscribed()) {
      say({ type: "event", event: "reconnected" });
      say({ type: "event", event: "resubscribed" });
    }
    up = true;
  });
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let pub, sub, hello;
  const channels = [];
  const sharded = () => hello.redis.pubsub === "sharded";
  // The bridge's message handler: its own echoes dropped by the instance
  // ID, the rest handed on.
  const deliver = (payload, channel) => {
    const receivedNs = unixNs();
    let source;
    try {
      source = JSON.parse(payload).source;
    } catch {
      // not an event of ours: the application would get it as it is
    }
    if (source === hello.instance_id) return say({ type: "filtered", payload });
    process.stdout.write(
      JSON.stringify({ type: "message", channel, payload }).slice(0, -1) + `,"received_ns":${receivedNs}}\n`,
    );
  };
  for await (const line of lines) {
    const m = JSON.parse(line);
    switch (m.type) {
      case "hello":
        hello = m;
        pub = connectClient(m, m.client_names.publisher);
        sub = connectClient(m, m.client_names.subscriber);
        pub.on("error", (err) => process.stderr.write(`publisher: ${err.message}\n`));
        if (m.redis.topology !== "cluster") watch(sub, () => channels.length > 0);
        else sub.on("error", (err) => process.stderr.write(`subscriber: ${err.message}\n`));
        try {
          await Promise.all([pub.connect(), sub.connect()]);
        } catch (err) {
          say({ type: "error", error: err.message });
          process.exit(1);
        }
        say({ type: "hello", protocol: 1, client: "node-redis", client_version: version });
        break;
      case "subscribe":
        try {
          if (sharded() && hello.redis.topology === "cluster") {
            // One SSUBSCRIBE names one slot's channels only.
            for (const ch of m.channels) await sub.sSubscribe(ch, deliver);
          } else if (sharded()) {
            await sub.sSubscribe(m.channels, deliver);
          } else {
            await sub.subscribe(m.channels, deliver);
          }
          channels.push(...m.channels);
          say({ type: "subscribed", channels: m.channels });
        } catch (err) {
          say({ type: "error", error: err.message });
        }
        break;
      case "publish": {
        // Not awaited: node-redis pipelines concurrent commands.
        const done = sharded() ? pub.sPublish(m.channel, m.payload) : pub.publish(m.channel, m.payload);
        done.then(
          () => say({ type: "published", id: m.id }),
          (err) =>
            say(
              err instanceof ErrorReply
                ? { type: "published", id: m.id, error: err.message } // the server refused it
                : { type: "published", id: m.id, unknown: err.message }, // no reply: it may be out
            ),
        );
        break;
      }
      case "ping":
        pub.ping().then(
          () => say({ type: "pong", id: m.id }),
          (err) => say({ type: "pong", id: m.id, error: err.message }),
        );
        break;
      case "stop":
        await Promise.allSettled([pub?.close(), sub?.close()]);
        process.exit(0);
    }
  }
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`node-redis adapter: ${err.stack}\n`);
  process.exit(1);
});
