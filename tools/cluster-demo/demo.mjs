// Two clients through the cluster's load balancer land on different nodes and talk.
// Run by `scripts/cluster.sh demo` (node demo.mjs URL), with the `ws` client from npm.
// Exits 0 when a channel message and a direct message both crossed nodes, 1 otherwise.

import WebSocket from "ws";

const url = process.argv[2] ?? "ws://127.0.0.1:8080/ws";
const deadline = setTimeout(() => fail("timed out after 15 s"), 15000);

function fail(why) {
  console.error(`demo failed: ${why}`);
  process.exit(1);
}

// A client that authenticates (development mode) and lets the demo await frames by type.
function client(user) {
  const ws = new WebSocket(url);
  const waiting = [];
  const frames = [];
  ws.on("message", (data) => {
    const frame = JSON.parse(data.toString());
    const i = waiting.findIndex((w) => w.match(frame));
    if (i >= 0) waiting.splice(i, 1)[0].resolve(frame);
    else frames.push(frame);
  });
  ws.on("error", (e) => fail(`${user}: ${e.message}`));
  const next = (match) =>
    new Promise((resolve) => {
      const i = frames.findIndex(match);
      if (i >= 0) resolve(frames.splice(i, 1)[0]);
      else waiting.push({ match, resolve });
    });
  const send = (frame) => ws.send(JSON.stringify(frame));
  const ready = new Promise((resolve) => {
    ws.on("open", () => {
      send({ type: "auth", id: 1, payload: { user_id: user } });
      resolve();
    });
  });
  return { ws, user, ready, next, send };
}

const nodeOf = (authSuccess) => authSuccess.payload.session_id.split("-")[0];

const alice = client("alice");
await alice.ready;
const aliceNode = nodeOf(await alice.next((f) => f.type === "auth.success"));
// least_conn: alice holds a connection on her node, so bob is sent to another one.
const bob = client("bob");
await bob.ready;
const bobNode = nodeOf(await bob.next((f) => f.type === "auth.success"));
console.log(`alice is on node ${aliceNode}, bob is on node ${bobNode}`);
if (aliceNode === bobNode) fail("the load balancer put both clients on one node");

for (const c of [alice, bob]) {
  c.send({ type: "subscribe", id: 2, payload: { channels: ["room:demo"] } });
  await c.next((f) => f.type === "subscribed");
}

// Each node subscribes to Redis right after answering "subscribed": publish until bob hears.
let heard = null;
for (let i = 0; i < 50 && !heard; i++) {
  alice.send({ type: "publish", id: 100 + i, payload: { channel: "room:demo", data: { text: "hello from alice", i } } });
  heard = await Promise.race([
    bob.next((f) => f.type === "message" && f.payload.channel === "room:demo"),
    new Promise((resolve) => setTimeout(() => resolve(null), 100)),
  ]);
}
if (!heard) fail("bob never received alice's channel message");
console.log(`bob (${bobNode}) got room:demo seq ${heard.payload.seq} from ${heard.payload.from}: ${heard.payload.data.text}`);

bob.send({ type: "direct", id: 200, payload: { to: "alice", data: { text: "hi alice, from bob" } } });
const direct = await alice.next((f) => f.type === "direct");
console.log(`alice (${aliceNode}) got a direct message from ${direct.payload.from}: ${direct.payload.data.text}`);

clearTimeout(deadline);
alice.ws.close();
bob.ws.close();
console.log("demo ok: messages crossed nodes through Redis");
process.exit(0);
