/**
 * Frames copied verbatim from the OISP IoT WebSocket server seed (`seeds/003_4bcbe1f1c5643d07.txt`): the
 * wire contract the `oisp` dialect must honour. The registration example writes its device id as a bare
 * `<deviceId>` placeholder (not JSON until filled in) and elides the token (`"eyJ0eXA....asdfwefadA"`).
 */

/** "Example json message" (client → server), as the seed writes it. */
export const REGISTRATION_TEMPLATE = `{
    "type": "device",
    "deviceId": <deviceId>,
    "deviceToken": "eyJ0eXA....asdfwefadA"
}`;

/** The registration with the placeholder filled (a JSON string) and a real token in place of the elided one. */
export function registration(deviceId: string, deviceToken: string): string {
  return REGISTRATION_TEMPLATE.replace('<deviceId>', JSON.stringify(deviceId)).replace('"eyJ0eXA....asdfwefadA"', JSON.stringify(deviceToken));
}

/** "Example of actuations message" (server → device), as the seed writes it. */
export const ACTUATION_FRAME = `{
    "code":1024,
    "content": {
        "type":"command",
        "transport":"ws",
        "content": {
            "accountId":"c4715841-bb1e-4c87-ad78-2376fe596a11",
            "deviceId":"example001",
            "gatewayId":"example001",
            "componentId":"1e447b10-9afd-4221-b4d8-7bc5c5bb6c3f",
            "command":"LED.v1.0","params":[{"name":"LED","value":"1"}]
        }
    }
}`;

/** The inner `content` of {@link ACTUATION_FRAME}: what a backend publishes. */
export const ACTUATION_CONTENT = (JSON.parse(ACTUATION_FRAME) as { content: { content: Record<string, unknown> } }).content.content;

/** The seed's account and device of the example. */
export const ACCOUNT_ID = 'c4715841-bb1e-4c87-ad78-2376fe596a11';
export const DEVICE_ID = 'example001';

/** "Basic response codes": code → the content the seed gives it. */
export const RESPONSE_CODES = {
  401: ['Invalid device token', 'Wrong message format'],
  500: ['Internal server error'],
  200: ['Subscribed to ws server'],
  1024: ['Received actuation message'],
} as const;

/** "It uses 'echo-protocol' for receiving and sending requests." */
export const SUBPROTOCOL = 'echo-protocol';
