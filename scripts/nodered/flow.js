// Writes flows.json for scripts/compare-nodered.sh: what an integrator would build for
// Vakt's job in Node-RED. MQTT in (QoS 1, persistent session) on the buttons' topics →
// a function node: decode, nearest on-duty staff by haversine from the staff table
// (read once at start), insert the event and the alarm into SQLite (WAL,
// synchronous=FULL, one transaction per message: Vakt's durability without its group commit), → WebSocket
// out: the offer (and the withdrawal on a reset) pushed to the phones.
// Usage: node flow.js OUT_DIR MQTT_PORT DB_PATH
const fs = require('fs');
const [out, mqttPort, db] = process.argv.slice(2);
const init = `
const Database = global.get('Database');
const db = new Database(${JSON.stringify(db)});
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(\`CREATE TABLE IF NOT EXISTS alarms (id INTEGER PRIMARY KEY, transmitter TEXT NOT NULL, staff TEXT, state TEXT NOT NULL, raised_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, transmitter TEXT NOT NULL, raw TEXT, alarm_id TEXT NOT NULL, duplicate INTEGER NOT NULL DEFAULT 0, received_at INTEGER NOT NULL);\`);
const tx = {};
for (const t of db.prepare('SELECT id, address, lat, lon FROM transmitters').all()) tx[t.address] = t;
const staff = db.prepare('SELECT id, lat, lon FROM staff WHERE on_duty = 1').all();
const open = {};
for (const a of db.prepare("SELECT id, transmitter FROM alarms WHERE state = 'offered'").all()) open[a.transmitter] = 'n-' + a.id;
context.set('s', {
	db, tx, staff, open,
	insAlarm: db.prepare("INSERT INTO alarms (transmitter, staff, state, raised_at) VALUES (?, ?, 'offered', ?)"),
	closeAlarm: db.prepare("UPDATE alarms SET state = 'cancelled' WHERE id = ?"),
	insEvent: db.prepare('INSERT INTO events (transmitter, raw, alarm_id, received_at) VALUES (?, ?, ?, ?)'),
});
`;
const func = `
const s = context.get('s');
return s.db.transaction(handle)(); // one transaction (one fsync) per MQTT message
function handle() {
const addr = msg.topic.slice('zigbee2mqtt/'.length);
const t = s.tx[addr];
const p = msg.payload;
if (!t || typeof p !== 'object') return null;
const now = Date.now();
const raw = JSON.stringify(p);
if (p.action === 'emergency') {
	if (s.open[t.id]) { s.insEvent.run(t.id, raw, s.open[t.id], now); return null; } // a repeat
	const R = 6371000, rad = Math.PI / 180;
	let best = null, bestD = Infinity;
	for (const m of s.staff) {
		const dLat = (m.lat - t.lat) * rad, dLon = (m.lon - t.lon) * rad;
		const h = Math.sin(dLat / 2) ** 2 + Math.cos(t.lat * rad) * Math.cos(m.lat * rad) * Math.sin(dLon / 2) ** 2;
		const d = 2 * R * Math.asin(Math.sqrt(h));
		if (d < bestD) { bestD = d; best = m; }
	}
	const id = 'n-' + s.insAlarm.run(t.id, best ? best.id : null, now).lastInsertRowid;
	s.insEvent.run(t.id, raw, id, now);
	s.open[t.id] = id;
	msg.payload = JSON.stringify({ type: 'offer', alarm: { id, kind: 'emergency', transmitter: { id: t.id }, staff: best && best.id, distance_m: Math.round(bestD) } });
	return msg;
}
if (p.action === 'reset') {
	const id = s.open[t.id] || '';
	if (id) { s.closeAlarm.run(Number(id.slice(2))); delete s.open[t.id]; }
	s.insEvent.run(t.id, raw, id, now);
	if (!id) return null;
	msg.payload = JSON.stringify({ type: 'withdrawn', alarm_id: id });
	return msg;
}
s.insEvent.run(t.id, raw, '', now); // a check-in
return null;
}
`;
const flows = [
	{ id: 'tab1', type: 'tab', label: 'Alarms' },
	{ id: 'broker1', type: 'mqtt-broker', name: 'mosquitto', broker: '127.0.0.1', port: String(mqttPort),
	  clientid: 'nodered-alarms', autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60',
	  cleansession: false, birthTopic: '', closeTopic: '', willTopic: '' },
	{ id: 'in1', type: 'mqtt in', z: 'tab1', name: 'buttons', topic: 'zigbee2mqtt/+/sos', qos: '1', datatype: 'json',
	  broker: 'broker1', nl: false, rap: false, inputs: 0, x: 100, y: 100, wires: [['fn1']] },
	{ id: 'fn1', type: 'function', z: 'tab1', name: 'route + store', func, initialize: init, finalize: 'context.get("s").db.close();',
	  outputs: 1, x: 300, y: 100, wires: [['ws1']] },
	{ id: 'wsl1', type: 'websocket-listener', path: '/ws/alarms', wholemsg: 'false' },
	{ id: 'ws1', type: 'websocket out', z: 'tab1', name: 'phones', server: 'wsl1', client: '', x: 500, y: 100, wires: [] },
];
fs.writeFileSync(out + '/flows.json', JSON.stringify(flows, null, 1));
