// Node-RED settings for scripts/compare-nodered.sh: loopback only, no editor, the
// flow in flows.json. better-sqlite3 comes from the folder the script installed into.
const path = require('path');
module.exports = {
	uiHost: '127.0.0.1',
	uiPort: Number(process.env.NR_PORT),
	httpAdminRoot: false, // no editor: the flow is fixed
	flowFile: path.join(__dirname, 'flows.json'),
	credentialSecret: false,
	functionGlobalContext: {
		Database: require(path.join(process.env.NR_MODULES, 'better-sqlite3')),
	},
	logging: { console: { level: 'info', metrics: false, audit: false } },
};
