// Creates the Node-RED flow's database with the staff and transmitter tables from
// loadgen's site.json (the same site Vakt runs). Usage: node seed.js SITE_JSON DB_PATH
const [siteJSON, dbPath] = process.argv.slice(2);
const Database = require(require('path').join(process.env.NR_MODULES, 'better-sqlite3'));
const site = JSON.parse(require('fs').readFileSync(siteJSON, 'utf8'));
const db = new Database(dbPath);
db.pragma('journal_mode = WAL');
db.exec(`CREATE TABLE staff (id TEXT PRIMARY KEY, lat REAL, lon REAL, on_duty INTEGER);
CREATE TABLE transmitters (id TEXT PRIMARY KEY, address TEXT, lat REAL, lon REAL);`);
const s = db.prepare('INSERT INTO staff VALUES (?, ?, ?, 1)');
const t = db.prepare('INSERT INTO transmitters VALUES (?, ?, ?, ?)');
db.transaction(() => {
	for (const m of site.staff) s.run(m.id, m.lat, m.lon);
	for (const x of site.transmitters) t.run(x.id, 'b' + x.id.slice(3) + '/sos', x.lat, x.lon);
})();
db.close();
