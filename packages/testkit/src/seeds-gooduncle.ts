/**
 * Frames copied verbatim from the Good Uncle seed (`seeds/004_76541c64c6c1012f.txt`, "Good Uncle
 * Websocket API"): the wire contract the `gooduncle` dialect must honour. The seed's examples are
 * JavaScript (single quotes, comments), so each is kept as written and, where a client would send it,
 * also as the JSON that `JSON.stringify` sends.
 */

/** Client → server frames. */
export const CLIENT_FRAMES = {
  /** "Keeping a Connection Open": `ws.send('`')` every 300 ms. */
  keepAlive: '`',
  /** "Sending and Receiving Messages", the "Typical Request" exactly as the seed prints it (not JSON). */
  typicalRequestLiteral: `{
	'type' : 'read', // Required key
	'foo' : 'bar' // Other required and optional keys, depending on request type
}`,
  /** The same request as a client sends it: `JSON.stringify({type: 'read', foo: 'bar'})`. */
  typicalRequest: `{"type":"read","foo":"bar"}`,
};

/** The seed's "Typical Response" exactly as printed (a JavaScript literal with comments). */
export const TYPICAL_RESPONSE_LITERAL = `{
	'session' : {
		'id' : 'mySessionid', // String
		'roles' : [] // Array of strings
	},
	'request' : {
		'time' : 123456, // Number
		'payload' : {} // original data sent with the request
	},
	'response' : {
		'time' : 123456, // Number
		'code' : 'ok', // String
		'errors' : [], // Array of objects
		'payload' : {} // Object containing zero or more keys
	},
	'passport' : [] // Array of objects	
}`;

/** The "Typical Response" as JSON: its keys and the JSON type of each value are the envelope's contract. */
export const TYPICAL_RESPONSE = {
  session: { id: 'mySessionid', roles: [] as string[] },
  request: { time: 123456, payload: {} },
  response: { time: 123456, code: 'ok', errors: [] as object[], payload: {} },
  passport: [] as object[],
};

/** "Request Types". */
export const REQUEST_TYPES = ['upgrade', 'downgrade', 'create', 'read', 'update', 'delete', 'subscribe', 'unsubscribe'];

/** "Response Codes", exactly. */
export const RESPONSE_CODES = ['ok', 'forbidden', 'not found', 'bad request', 'error'];

/** "Keeping a Connection Open" and "Detecting a Faulty Connection" (milliseconds). */
export const TIMING = {
  /** The server sends a single character every ~300 ms. */
  serverKeepAliveMs: 300,
  /** The server closes a connection from which nothing was received for 3000 ms. */
  clientSilenceMs: 3000,
  /** Nothing from the server for more than ~1000 ms: the client calls the connection faulty. */
  faultyAfterMs: 1000,
};
