/**
 * Frames copied from the Fleet Freedom seed (`seeds/000_9eb1f4a1cf92c0d9.txt`, "Getting Started"): the
 * wire contract the `fleetfreedom` dialect must honour. The JavaScript samples
 * (`"login " + JSON.stringify({...})`) are written out as the text they send; the pretty-printed
 * examples keep their line breaks and indentation.
 */

/** Client → server frames. */
export const CLIENT_FRAMES = {
  /** "Logging in": `socket.send("login " + JSON.stringify({...}))`. */
  login: `login {"reqId":1,"username":"email@address.com","password":"password","userAgent":"a short name to identify your application"}`,
  /** "Request example". */
  getCompany: `getCompany {
  "reqId": 1,
  "company": {
    "id": 42
  }
}`,
  /** "Using JavaScript, sending a command": `socket.send("getCompany " + JSON.stringify({ "reqId": 1, "company": { "id": 42 } }))`. */
  getCompanyJs: `getCompany {"reqId":1,"company":{"id":42}}`,
  /** "Synchronization messages": the subscribe request. */
  subscribe: `subscribe {
  "reqId": 2,
  "company": {
    "id": 42
  },
  "subscriptionTypes": [
    "assetGeneral",
    "assetAdvanced"
  ]
}`,
} as const;

/** Server → client frames as the seed shows them (placeholders where the seed has comments). */
export const SERVER_FRAMES = {
  /** "Establishing a connection": the fields of `connectionResponse`; the last three only when logged in. */
  connectionResponseFields: ['errorCode', 'message', 'serverTime', 'ghostId', 'expiry'],
  connectionResponseLoggedInFields: ['user', 'sessionPolicy', 'passwordPolicy'],
  /** "Response example" (`Company` is the company object). */
  getCompanyResponse: { reqId: 1, errorCode: 0, message: 'Company retrieved' },
  /** "Deleted messages": `<type>Deleted { "id": number, "company": number }`, the example's values. */
  assetDeleted: `assetDeleted { "id": 123456, "company": 42 }`,
  /** The names of the synchronization frames of the example subscription. */
  syncNames: ['assetDeleted', 'assetGeneralMerged', 'assetAdvancedMerged'],
} as const;
