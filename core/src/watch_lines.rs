//! A watch request whose event lines the caller decodes, instead of kube's
//! `Client::request_events` decoding them as `WatchEvent<K>` itself: the same request
//! (`Api::watch`'s URL, `Accept-Encoding: identity`), the same framing (newline-delimited,
//! a trailing `\r` dropped, a last line without newline read at the end) and the same
//! errors (an error status as `Error::Api`, a body cut by EOF ending the stream quietly,
//! any other body error as `Error::ReadEvents`). What it adds: the decoder sees each line's
//! text, so that a lean read can skip what it already knows (see [`crate::lean`]).

use std::io;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use http_body_util::BodyExt;
use kube::api::{WatchEvent, WatchParams};
use kube::core::Status;

/// Decodes one event line.
pub(crate) type Decode<K> = Box<dyn FnMut(&str) -> serde_json::Result<WatchEvent<K>> + Send>;

/// The lines of a watch response body.
pub(crate) type Lines = BoxStream<'static, kube::Result<String>>;

/// Whether `err` or one of its sources is an `UnexpectedEof` I/O error (as kube tells a
/// watch cut short from a failed one).
fn unexpected_eof(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    // Bounded, in case a `source` chain cycles.
    for _ in 0..16 {
        let Some(e) = current else { return false };
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The error kube's `handle_api_errors` makes of an error response.
async fn api_error(res: http::Response<kube::client::Body>) -> kube::Error {
    let code = res.status().as_u16();
    let bytes = match res.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return e,
    };
    let text = match String::from_utf8(bytes.to_vec()) {
        Ok(t) => t,
        Err(e) => return kube::Error::FromUtf8(e),
    };
    match serde_json::from_str::<Status>(&text) {
        Ok(status) => kube::Error::Api(status.boxed()),
        Err(_) => kube::Error::Api(
            Status::failure(text.trim(), "Failed to parse error data")
                .with_code(code)
                .boxed(),
        ),
    }
}

/// Starts a watch of `url_path` (an `Api`'s resource URL) from `version`: its lines.
pub(crate) async fn start(
    client: &kube::Client,
    url_path: &str,
    wp: &WatchParams,
    version: &str,
) -> kube::Result<Lines> {
    let mut req = kube::core::Request::new(url_path)
        .watch(wp, version)
        .map_err(kube::Error::BuildRequest)?;
    req.extensions_mut().insert("watch");
    req.headers_mut()
        .entry(http::header::ACCEPT_ENCODING)
        .or_insert(http::HeaderValue::from_static("identity"));
    let res = client.send(req.map(kube::client::Body::from)).await?;
    if res.status().is_client_error() || res.status().is_server_error() {
        return Err(api_error(res).await);
    }
    let body = res.into_body().into_data_stream();
    let state = (body, BytesMut::new(), 0usize, false);
    Ok(futures::stream::unfold(
        state,
        |(mut body, mut buf, mut scanned, mut ended)| async move {
            loop {
                if let Some(at) = memchr::memchr(b'\n', &buf[scanned..]) {
                    let line = buf.split_to(scanned + at + 1);
                    scanned = 0;
                    let text = &line[..line.len() - 1];
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    let item = utf8(text);
                    if item.is_err() {
                        // As kube's line codec: a line that is not UTF-8 ends the stream.
                        return Some((item, (body, BytesMut::new(), 0, true)));
                    }
                    return Some((item, (body, buf, scanned, ended)));
                }
                scanned = buf.len();
                if ended {
                    // As kube's line codec: nothing left, or only a `\r`, is no line.
                    if buf.is_empty() || buf[..] == b"\r"[..] {
                        return None;
                    }
                    // A last line without newline.
                    let line = buf.split();
                    let text = line.strip_suffix(b"\r").unwrap_or(&line);
                    return Some((utf8(text), (body, buf, 0, ended)));
                }
                match body.next().await {
                    Some(Ok(data)) => extend(&mut buf, data),
                    Some(Err(e)) => {
                        // As kube: a cut body ends the stream (to be resumed), any other
                        // error is the stream's last item.
                        let eof = unexpected_eof(&e)
                            || e.to_string().contains("unexpected EOF during chunk");
                        if eof {
                            tracing::warn!("eof in poll: {e:?}");
                            return None;
                        }
                        let err = kube::Error::ReadEvents(io::Error::other(e));
                        return Some((Err(err), (body, BytesMut::new(), 0, true)));
                    }
                    None => ended = true,
                }
            }
        },
    )
    .boxed())
}

fn extend(buf: &mut BytesMut, data: Bytes) {
    buf.extend_from_slice(&data);
}

/// A line as text, or the error kube's line codec (tokio-util's `LinesCodec`) gives for
/// one that is not UTF-8, with its message.
fn utf8(line: &[u8]) -> kube::Result<String> {
    match std::str::from_utf8(line) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(kube::Error::ReadEvents(io::Error::new(
            io::ErrorKind::InvalidData,
            "Unable to decode input as UTF8",
        ))),
    }
}

/// What kube makes of one line: the event; nothing for a line cut short (a truncated last
/// line); an error status sent as a line as `Error::Api`; else the parse error.
pub(crate) fn decode_line<K>(
    line: &str,
    decode: &mut Decode<K>,
) -> Option<kube::Result<WatchEvent<K>>> {
    match decode(line) {
        Ok(ev) => Some(Ok(ev)),
        Err(e) if e.is_eof() => None,
        Err(e) => match serde_json::from_str::<Status>(line) {
            Ok(status) => Some(Err(kube::Error::Api(status.boxed()))),
            Err(_) => Some(Err(kube::Error::SerdeError(e))),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;

    use rand::{Rng, SeedableRng};

    use futures::TryStreamExt;
    use http_body::Frame;
    use http_body_util::StreamBody;
    use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

    use super::*;

    /// The lines (or the error's text) `start` reads from a body sent in `chunks`.
    async fn ours(chunks: Vec<Vec<u8>>) -> Vec<Result<String, String>> {
        let service = tower::service_fn(move |_req| {
            let frames = chunks
                .clone()
                .into_iter()
                .map(|c| Ok::<_, io::Error>(Frame::data(Bytes::from(c))));
            async move {
                Ok::<_, Infallible>(http::Response::new(StreamBody::new(futures::stream::iter(
                    frames,
                ))))
            }
        });
        let client = kube::Client::new(service, "default");
        let lines = start(
            &client,
            "/api/v1/namespaces/default/pods",
            &WatchParams::default(),
            "0",
        )
        .await
        .unwrap();
        lines.map(|r| r.map_err(|e| e.to_string())).collect().await
    }

    /// What kube's framing (tokio-util's `LinesCodec`, errors as `Error::ReadEvents`)
    /// reads from the same bytes.
    async fn kube_s(body: &[u8]) -> Vec<Result<String, String>> {
        FramedRead::new(body, LinesCodec::new())
            .map_err(|e| match e {
                LinesCodecError::Io(e) => kube::Error::ReadEvents(e).to_string(),
                LinesCodecError::MaxLineLengthExceeded => e.to_string(),
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn lines_split_anywhere_read_as_kube_s_line_codec_reads_them() {
        let bodies: [&[u8]; 6] = [
            b"{\"type\":\"ADDED\"}\r\n\n{\"a\":\"\xc3\xa9\xe2\x82\xac\"}\nx\ry\n{\"last\":1}",
            b"one\r\ntwo\r\n\r\n",
            b"cut at the end\r",
            b"\r",
            b"",
            b"good\n\xff\xfe bad\nnever read\n",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x2545_f491_4f6c_dd1d);
        let mut next = |n: usize| rng.random_range(0..n);
        for body in bodies {
            let want = kube_s(body).await;
            for _ in 0..40 {
                // Cut anywhere: inside "\r\n", inside a multi-byte character, empty chunks.
                let mut chunks = Vec::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (chunk, after) = rest.split_at(next(rest.len().min(7) + 1));
                    chunks.push(chunk.to_vec());
                    rest = after;
                }
                assert_eq!(ours(chunks.clone()).await, want, "{chunks:?}");
            }
        }
    }
}
