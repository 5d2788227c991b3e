const PLAIN_HEADER_VALUE = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * The value as it can travel in an HTTP header. Values that are not printable ASCII, or
 * that HTTP would trim, become one RFC 2047 encoded word, as S3 itself stores them.
 */
export function encodeHeaderValue(value: string): string {
  if (value === "" || PLAIN_HEADER_VALUE.test(value)) return value;
  return `=?UTF-8?B?${Buffer.from(value, "utf8").toString("base64")}?=`;
}

/** The reverse of encodeHeaderValue, for values read back from S3. */
export function decodeHeaderValue(value: string): string {
  const word = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$/i.exec(value);
  return word ? Buffer.from(word[1], "base64").toString("utf8") : value;
}
