//! The client side: decoding replies from a server (memcached or ours), for
//! the load generator and tests.

use crate::response::{MetaStatus, Response};

/// A reply that cannot be decoded; the connection is out of sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    #[error("malformed reply line: {0:?}")]
    Malformed(String),
    #[error("value data not followed by CRLF")]
    BadDataTerminator,
    #[error("reply line longer than {0} bytes")]
    LineTooLong(usize),
}

/// Longest reply line accepted (a VALUE line with a 250-byte key is < 300).
const MAX_REPLY_LINE: usize = 64 * 1024;

fn malformed(line: &[u8]) -> ResponseError {
    ResponseError::Malformed(String::from_utf8_lossy(line).into_owned())
}

fn num<T: std::str::FromStr>(tok: Option<&[u8]>, line: &[u8]) -> Result<T, ResponseError> {
    tok.and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| malformed(line))
}

fn text<'a>(b: &'a [u8], line: &[u8]) -> Result<&'a str, ResponseError> {
    std::str::from_utf8(b).map_err(|_| malformed(line))
}

/// Decodes one reply from the front of `buf`.
///
/// `Ok(None)`: incomplete, nothing consumed. `Ok(Some((reply, used)))`. A get
/// yields one `Value` per item and then `End`.
pub fn decode_response(buf: &[u8]) -> Result<Option<(Response<'_>, usize)>, ResponseError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_REPLY_LINE {
            return Err(ResponseError::LineTooLong(MAX_REPLY_LINE));
        }
        return Ok(None);
    };
    let used = nl + 1;
    let line = &buf[..nl];
    let Some(line) = line.strip_suffix(b"\r") else {
        return Err(malformed(line));
    };
    let simple = match line {
        b"STORED" => Some(Response::Stored),
        b"NOT_STORED" => Some(Response::NotStored),
        b"EXISTS" => Some(Response::Exists),
        b"NOT_FOUND" => Some(Response::NotFound),
        b"DELETED" => Some(Response::Deleted),
        b"TOUCHED" => Some(Response::Touched),
        b"END" => Some(Response::End),
        b"OK" => Some(Response::Ok),
        b"RESET" => Some(Response::Reset),
        b"ERROR" => Some(Response::Error),
        _ => None,
    };
    if let Some(r) = simple {
        return Ok(Some((r, used)));
    }
    let (word, rest) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &line[line.len()..]),
    };
    let with_data = |len: usize, used: usize| -> Result<Option<&[u8]>, ResponseError> {
        let end = used + len + 2;
        if buf.len() < end {
            return Ok(None);
        }
        if &buf[used + len..end] != b"\r\n" {
            return Err(ResponseError::BadDataTerminator);
        }
        Ok(Some(&buf[used..used + len]))
    };
    let r = match word {
        b"VALUE" => {
            let mut toks = rest.split(|&b| b == b' ');
            let key = toks
                .next()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| malformed(line))?;
            let flags = num(toks.next(), line)?;
            let len: usize = num(toks.next(), line)?;
            let cas = match toks.next() {
                Some(c) => Some(num(Some(c), line)?),
                None => None,
            };
            let Some(data) = with_data(len, used)? else {
                return Ok(None);
            };
            return Ok(Some((
                Response::Value {
                    key,
                    flags,
                    data,
                    cas,
                },
                used + len + 2,
            )));
        }
        b"VERSION" => Response::Version(text(rest, line)?),
        b"STAT" => {
            let sp = rest
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| malformed(line))?;
            Response::Stat(text(&rest[..sp], line)?, text(&rest[sp + 1..], line)?)
        }
        b"CLIENT_ERROR" => Response::ClientError(text(rest, line)?),
        b"SERVER_ERROR" => Response::ServerError(text(rest, line)?),
        _ if !word.is_empty() && word.iter().all(u8::is_ascii_digit) && rest.is_empty() => {
            Response::Number(num(Some(word), line)?)
        }
        _ => {
            let status = MetaStatus::from_bytes(word).ok_or_else(|| malformed(line))?;
            if status == MetaStatus::Va {
                let sp = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
                let len: usize = num(Some(&rest[..sp]), line)?;
                let flags = rest.get(sp + 1..).unwrap_or(&[]);
                let Some(data) = with_data(len, used)? else {
                    return Ok(None);
                };
                return Ok(Some((
                    Response::Meta {
                        status,
                        flags,
                        data: Some(data),
                    },
                    used + len + 2,
                )));
            }
            Response::Meta {
                status,
                flags: rest,
                data: None,
            }
        }
    };
    Ok(Some((r, used)))
}
