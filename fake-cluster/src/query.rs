//! Query strings of API requests: decoding, flags, and `continue` tokens of paged lists.

use std::collections::HashMap;

use crate::status::ApiError;

/// The decoded query parameters of a request.
pub type Query = HashMap<String, String>;

/// Decodes `a=b&c=d` (percent-encoding and `+` for space).
pub fn parse_query(q: Option<&str>) -> Query {
    let mut out = HashMap::new();
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

/// Decodes percent-encoding and `+`; malformed escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    if !s.contains(['%', '+']) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a boolean query parameter is set to true.
pub fn flag(q: &Query, key: &str) -> bool {
    matches!(q.get(key).map(String::as_str), Some("true" | "1"))
}

/// Whether the request is a dry run (`dryRun=All`); 422 for another value, as the real
/// server validates `dryRun` (`kind` is `CreateOptions`, `UpdateOptions`, ...).
pub fn dry_run(q: &Query, kind: &str) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "{kind}.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{{\"{other}\"}}: supported values: \"All\""
            ),
        )),
    }
}

/// The `continue` token naming the last item of a page.
pub fn encode_continue(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

/// Decodes a `continue` token; 400 as the real server answers for a malformed one.
pub fn decode_continue(token: &str) -> Result<String, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request("continue key is not valid: illegal base64 data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let q = parse_query(Some("labelSelector=a%3Db%2Cc&watch=true&x=%zz&y=a+b&z=%4"));
        assert_eq!(q["labelSelector"], "a=b,c");
        assert_eq!(q["watch"], "true");
        assert_eq!(q["x"], "%zz");
        assert_eq!(q["y"], "a b");
        assert_eq!(q["z"], "%4");
        assert!(flag(&q, "watch"));
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue("ns/name");
        assert_eq!(decode_continue(&t).unwrap(), "ns/name");
        assert_eq!(decode_continue("!!").unwrap_err().code, 400);
    }
}
