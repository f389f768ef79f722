/**
 * Frames copied verbatim from the FME Server seed (`seeds/001_c7f1e088475434bf.txt`, "WebSocket Server
 * Messaging Protocol"): the wire contract the `fme` dialect must honour. The seed's `<placeholders>` are
 * kept as they are where they are valid values (stream ids are any strings), and its response templates
 * are given with the placeholders to fill in.
 */

/** Client → server frames, as the seed writes them. */
export const CLIENT_FRAMES = {
  /** "To open messages, the following schema is used" */
  open: `{
"ws_op" : "open",
"ws_stream_ids" : ["<streamid1>", "<streamid2>", "<streamid3>"]
}`,
  /** "The WebSocket server then relays messages using this schema" */
  send: `{
"ws_op" : "send",
"ws_msg" : "msg"
}`,
  /** "request that the WebSocket server close the message stream" */
  close: `{
"ws_op": "close"
}`,
  /** "To get the number of open WebSocket channels, by Stream ID" */
  getnumchannels: `{
"ws_op" : "admin",
"ws_msg" : "getnumchannels()"
}`,
  /** "To get connection information about each open WebSocket channel" */
  getchannelinfo: `{
"ws_op" : "admin",
"ws_msg" : "getchannelinfo()"
}`,
} as const;

/** The seed's stream ids in {@link CLIENT_FRAMES.open}. */
export const OPEN_STREAM_IDS = ['<streamid1>', '<streamid2>', '<streamid3>'] as const;

/** Server → client response templates ("Corresponding response object"), placeholders in angle brackets. */
export const SERVER_TEMPLATES = {
  getnumchannels: `{
"numchannels" : "<number_of_channels>",
"streams":[
{
"stream" : "message_stream_id",
"numchannels" : "<number_of_channels_open_on_this_stream>"
}
]
}`,
  getchannelinfo: `{
"numchannels" : "<number_of_channels>",
"channels" :[
{
"port" : "<channel_port_number>",
"stream" : "message_stream_id",
"host" : "channel_host_ip_address",
"writable" : "<channel_is_writable_true_or_false>"
}
]
}`,
} as const;
