//! The fields of each frontend message, checked on a whole frame's body before pgwire
//! decodes it. pgwire's decoders read fixed fields without checking that they are there: a
//! Parse whose parameter count announces more types than follow, or a Bind cut short in its
//! format codes, made them panic (found by the `pgwire_session` fuzz target). The panic was
//! caught, but a panic is a defect; PostgreSQL answers such a message with 08P01 "invalid
//! message format", and so does this check.
//!
//! ```text
//! Parse      name\0 query\0 n:i16 n×oid:i32
//! Bind       portal\0 statement\0 f:i16 f×i16 p:i16 p×(len:i32 (−1: NULL) len×u8) r:i16 r×i16
//! Describe   'S'|'P' name\0          Close   'S'|'P' name\0
//! Execute    portal\0 rows:i32       Query   sql\0        CopyFail   message\0
//! ```
//!
//! Each layout must fill the body exactly. Types without fields (Sync, Flush, Terminate,
//! CopyDone) are bounded by their length alone, CopyData holds any bytes.
//!
//! An Execute's row limit is also bounded ([`bound_row_limit`]): pgwire reserves room for
//! as many rows as a client asks for, so a limit of two billion rows aborted the process
//! on an allocation of 63 GB (found by the same target).

/// Why a body does not have its type's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The body ends inside a field.
    #[error("message of type \"{}\" ends inside its {field}", char::from(*.message_type))]
    Truncated {
        /// The type byte.
        message_type: u8,
        /// The field it ends in.
        field: &'static str,
    },
    /// A count or a length below what it may be.
    #[error("negative {field} in message of type \"{}\"", char::from(*.message_type))]
    Negative {
        /// The type byte.
        message_type: u8,
        /// The field.
        field: &'static str,
    },
    /// Describe or Close of something that is neither a statement nor a portal.
    #[error("invalid {} message subtype {}", if *.message_type == b'D' { "DESCRIBE" } else { "CLOSE" }, .subtype)]
    Subtype {
        /// The type byte.
        message_type: u8,
        /// The subtype byte.
        subtype: u8,
    },
    /// Bytes after the last field.
    #[error("{left} bytes left over after message of type \"{}\"", char::from(*.message_type))]
    LeftOver {
        /// The type byte.
        message_type: u8,
        /// How many bytes.
        left: usize,
    },
}

/// Checks that `body` holds exactly the fields of a `message_type` message sent after
/// authentication.
///
/// # Errors
/// The first field the body does not hold, or bytes after the last.
pub fn check(message_type: u8, body: &[u8]) -> Result<(), FieldError> {
    let mut fields = Fields {
        message_type,
        rest: body,
    };
    match message_type {
        b'P' => {
            fields.string("statement name")?;
            fields.string("query")?;
            let types = fields.count("parameter type count")?;
            fields.skip(types * 4, "parameter types")?;
        }
        b'B' => {
            fields.string("portal name")?;
            fields.string("statement name")?;
            let formats = fields.count("parameter format count")?;
            fields.skip(formats * 2, "parameter formats")?;
            for _ in 0..fields.count("parameter count")? {
                let length = fields.i32("parameter length")?;
                if length != -1 {
                    let length = usize::try_from(length).map_err(|_| FieldError::Negative {
                        message_type,
                        field: "parameter length",
                    })?;
                    fields.skip(length, "parameter value")?;
                }
            }
            let formats = fields.count("result format count")?;
            fields.skip(formats * 2, "result formats")?;
        }
        b'D' | b'C' => {
            let subtype = fields.take(1, "subtype")?[0];
            if subtype != b'S' && subtype != b'P' {
                return Err(FieldError::Subtype {
                    message_type,
                    subtype,
                });
            }
            fields.string("name")?;
        }
        b'E' => {
            fields.string("portal name")?;
            fields.i32("row limit")?;
        }
        b'Q' => fields.string("query")?,
        b'f' => fields.string("error message")?,
        _ => return Ok(()),
    }
    fields.end()
}

/// The most rows one Execute returns before PortalSuspended: a client asking for more
/// gets them in portions of this many (it executes the portal again, as after any limit).
pub const MAX_ROW_LIMIT: i32 = 1 << 24;

/// Bounds the row limit of an Execute `frame` (type byte, length, body) whose fields
/// [`check`] accepted: a negative limit means no limit, as in PostgreSQL (0 to pgwire), and
/// a limit above [`MAX_ROW_LIMIT`] becomes that. Other frames are left as they are.
pub fn bound_row_limit(frame: &mut [u8]) {
    if frame.first() != Some(&b'E') || frame.len() < 4 {
        return;
    }
    let at = frame.len() - 4;
    let limit = i32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]);
    let bounded = if limit < 0 {
        0
    } else {
        limit.min(MAX_ROW_LIMIT)
    };
    frame[at..].copy_from_slice(&bounded.to_be_bytes());
}

/// A cursor over a message body.
struct Fields<'a> {
    message_type: u8,
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn truncated(&self, field: &'static str) -> FieldError {
        FieldError::Truncated {
            message_type: self.message_type,
            field,
        }
    }

    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], FieldError> {
        if self.rest.len() < len {
            return Err(self.truncated(field));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    fn skip(&mut self, len: usize, field: &'static str) -> Result<(), FieldError> {
        self.take(len, field).map(drop)
    }

    /// A NUL-terminated string.
    fn string(&mut self, field: &'static str) -> Result<(), FieldError> {
        let end = self
            .rest
            .iter()
            .position(|&byte| byte == 0)
            .ok_or_else(|| self.truncated(field))?;
        self.rest = &self.rest[end + 1..];
        Ok(())
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, FieldError> {
        let bytes = self.take(4, field)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// An `i16` count, which may not be negative.
    fn count(&mut self, field: &'static str) -> Result<usize, FieldError> {
        let bytes = self.take(2, field)?;
        usize::try_from(i16::from_be_bytes([bytes[0], bytes[1]])).map_err(|_| {
            FieldError::Negative {
                message_type: self.message_type,
                field,
            }
        })
    }

    fn end(self) -> Result<(), FieldError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(FieldError::LeftOver {
                message_type: self.message_type,
                left: self.rest.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(types: i16, oids: &[i32]) -> Vec<u8> {
        let mut body = b"s\0SELECT $1\0".to_vec();
        body.extend_from_slice(&types.to_be_bytes());
        for oid in oids {
            body.extend_from_slice(&oid.to_be_bytes());
        }
        body
    }

    #[test]
    fn a_parse_holds_as_many_types_as_it_counts() {
        assert_eq!(check(b'P', &parse(1, &[23])), Ok(()));
        assert_eq!(check(b'P', &parse(0, &[])), Ok(()));
        assert!(matches!(
            check(b'P', &parse(2, &[23])),
            Err(FieldError::Truncated {
                field: "parameter types",
                ..
            })
        ));
        assert!(matches!(
            check(b'P', &parse(-1, &[])),
            Err(FieldError::Negative { .. })
        ));
        assert!(matches!(
            check(b'P', &parse(0, &[23])),
            Err(FieldError::LeftOver { left: 4, .. })
        ));
        assert!(matches!(
            check(b'P', b"s\0SELECT 1"),
            Err(FieldError::Truncated { field: "query", .. })
        ));
    }

    fn bind(parameters: &[Option<&[u8]>], result_formats: i16) -> Vec<u8> {
        let mut body = b"\0\0".to_vec();
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&i16::try_from(parameters.len()).unwrap_or(0).to_be_bytes());
        for parameter in parameters {
            match parameter {
                Some(value) => {
                    body.extend_from_slice(&i32::try_from(value.len()).unwrap_or(0).to_be_bytes());
                    body.extend_from_slice(value);
                }
                None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        body.extend_from_slice(&result_formats.to_be_bytes());
        body
    }

    #[test]
    fn a_bind_holds_its_formats_and_values() {
        assert_eq!(check(b'B', &bind(&[Some(b"42"), None], 0)), Ok(()));
        let mut short = bind(&[Some(b"42")], 0);
        short.truncate(short.len() - 3);
        assert!(matches!(
            check(b'B', &short),
            Err(FieldError::Truncated { .. })
        ));
        let mut counted = bind(&[], 1);
        assert!(matches!(
            check(b'B', &counted),
            Err(FieldError::Truncated {
                field: "result formats",
                ..
            })
        ));
        counted.extend_from_slice(&1i16.to_be_bytes());
        assert_eq!(check(b'B', &counted), Ok(()));
        let mut negative = b"\0\0\0\0\0\x01".to_vec();
        negative.extend_from_slice(&(-2i32).to_be_bytes());
        assert!(matches!(
            check(b'B', &negative),
            Err(FieldError::Negative {
                field: "parameter length",
                ..
            })
        ));
    }

    #[test]
    fn describe_and_close_name_a_statement_or_a_portal() {
        assert_eq!(check(b'D', b"S\0"), Ok(()));
        assert_eq!(check(b'C', b"Pname\0"), Ok(()));
        let error = check(b'D', b"X\0").expect_err("not S or P");
        assert_eq!(error.to_string(), "invalid DESCRIBE message subtype 88");
        assert!(matches!(
            check(b'C', b"S"),
            Err(FieldError::Truncated { field: "name", .. })
        ));
    }

    #[test]
    fn row_limits_are_bounded_and_negative_ones_mean_none() {
        let execute = |limit: i32| {
            let mut frame = b"E\0\0\0\x09\0".to_vec();
            frame.extend_from_slice(&limit.to_be_bytes());
            bound_row_limit(&mut frame);
            i32::from_be_bytes(frame[6..].try_into().expect("four bytes"))
        };
        assert_eq!(execute(0), 0);
        assert_eq!(execute(50), 50);
        assert_eq!(execute(-1), 0);
        assert_eq!(execute(i32::MIN), 0);
        assert_eq!(execute(i32::MAX), MAX_ROW_LIMIT);
        let mut sync = b"S\0\0\0\x04".to_vec();
        bound_row_limit(&mut sync);
        assert_eq!(sync, b"S\0\0\0\x04");
    }

    #[test]
    fn execute_query_and_copy_fail_end_where_their_fields_do() {
        assert_eq!(check(b'E', b"\0\0\0\0\x05"), Ok(()));
        assert!(check(b'E', b"\0\0\0").is_err());
        assert_eq!(check(b'Q', b"SELECT 1\0"), Ok(()));
        assert!(matches!(
            check(b'Q', b"SELECT 1\0x"),
            Err(FieldError::LeftOver { left: 1, .. })
        ));
        assert_eq!(check(b'f', b"stop\0"), Ok(()));
        assert_eq!(check(b'd', b"anything"), Ok(()));
    }
}
