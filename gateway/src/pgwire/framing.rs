//! Framing of frontend messages: which message types each phase of a connection accepts and
//! which lengths each type can have, checked on the raw bytes before pgwire decodes them.
//!
//! pgwire's codec only checks a message's length against an upper bound and then decodes
//! whatever bytes follow. A Query whose length said 3 was run with bytes of the next message,
//! a password message shorter than its own fields panicked the SASL decoder, and a Query sent
//! during the SCRAM exchange fell through the start-up dispatch unanswered. PostgreSQL refuses
//! all of these at once and for good; so does this module:
//!
//! ```text
//! bytes ─▶ header (type, length) ─▶ allowed in this phase? length possible for the type?
//!       ─▶ whole frame ─▶ body shaped as the phase expects? ─▶ pgwire decodes exactly the
//!          frame (nothing left over, no panic) ─▶ dispatch
//!   any "no" ─▶ FrameError ─▶ FATAL ErrorResponse, connection closed
//! ```
//!
//! The header is checked as soon as it arrives, before the body is read, so a bad length
//! never makes the gateway wait for (or buffer) the bytes it announces.

use std::io;
use std::panic::AssertUnwindSafe;

use bytes::{Buf, BytesMut};
use pgwire::api::PgWireConnectionState;
use pgwire::error::PgWireError;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::errors::fatal;
use super::message_fields;

/// Largest start-up packet, as PostgreSQL's `MAX_STARTUP_PACKET_LENGTH` (and pgwire's).
const MAX_STARTUP_LENGTH: usize = 10_000;
/// Smallest start-up packet: length and protocol code.
const MIN_STARTUP_LENGTH: usize = 8;
/// Largest message of most types, as PostgreSQL's `PQ_SMALL_MESSAGE_LIMIT` (and pgwire's).
const SMALL_LIMIT: usize = 10_000;
/// Largest Query, Parse, Bind or CopyData message, as PostgreSQL's `PQ_LARGE_MESSAGE_LIMIT`
/// (1 GB − 2, also pgwire's). A Query or Parse whose SQL is longer than `pg.max_query_size`
/// is read past without being kept and refused with 54000, so the session goes on.
const LARGE_LIMIT: usize = 0x3fff_fffe;
/// What a Parse message may hold beside its SQL: a statement name (PostgreSQL's identifiers
/// are far shorter), the terminators, and 65,535 parameter types.
const PARSE_OVERHEAD: usize = 64 * 1024 + 2 + 2 + 65_535 * 4;
/// The length field counts itself.
const LENGTH_FIELD: usize = 4;

/// Why a connection is ended; each is sent as a FATAL ErrorResponse.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A start-up packet length outside 8..=10,000.
    #[error("invalid length of startup packet: {0}")]
    StartupLength(i64),
    /// A length the message type cannot have.
    #[error("invalid message length {length} for message type \"{}\"", char::from(*.message_type))]
    Length {
        /// The type byte.
        message_type: u8,
        /// The length field as sent.
        length: i64,
    },
    /// Anything but a password-family message during the SASL exchange.
    #[error("expected SASL response, got message type {0}")]
    ExpectedSasl(u8),
    /// A type byte the protocol does not define after authentication.
    #[error("invalid frontend message type {0}")]
    UnknownType(u8),
    /// FunctionCall ('F'), which the gateway does not implement.
    #[error("the function call protocol is not supported")]
    FunctionCall,
    /// A frame whose body does not have the fields of its type.
    #[error("invalid message format: {0}")]
    Format(String),
    /// The socket failed; nothing can be sent.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl FrameError {
    /// The FATAL error sent to the client.
    pub fn to_client(&self) -> PgWireError {
        let code = match self {
            Self::FunctionCall => "0A000",
            _ => "08P01",
        };
        fatal(code, self.to_string())
    }
}

/// What a connection expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A start-up packet (Startup or CancelRequest): no type byte.
    Startup,
    /// The SCRAM exchange: only password-family messages. The first one is a
    /// SASLInitialResponse, later ones SASLResponses (only SASL is offered, see `auth`).
    Sasl {
        /// Whether the next message is the SASLInitialResponse.
        initial: bool,
    },
    /// Authenticated: the simple, extended and copy sub-protocols.
    Ready,
}

impl Phase {
    /// The phase of a connection in pgwire's `state`, `sasl_messages` password messages into
    /// the exchange.
    pub fn of(state: PgWireConnectionState, sasl_messages: usize) -> Self {
        match state {
            PgWireConnectionState::AwaitingSslRequest | PgWireConnectionState::AwaitingStartup => {
                Self::Startup
            }
            PgWireConnectionState::AuthenticationInProgress => Self::Sasl {
                initial: sasl_messages == 0,
            },
            _ => Self::Ready,
        }
    }

    /// Bytes before the length field: the type byte, except in start-up packets.
    fn type_bytes(self) -> usize {
        usize::from(self != Self::Startup)
    }

    /// Checks a frame header: whether the phase accepts `message_type` and whether `length`
    /// (which counts itself, not the type byte) is possible for it.
    ///
    /// # Errors
    /// The [`FrameError`] the connection ends with.
    fn check_header(self, message_type: u8, length: i32) -> Result<(), FrameError> {
        let bounds = match self {
            Self::Startup => {
                return usize::try_from(length)
                    .ok()
                    .filter(|len| (MIN_STARTUP_LENGTH..=MAX_STARTUP_LENGTH).contains(len))
                    .map(|_| ())
                    .ok_or(FrameError::StartupLength(i64::from(length)));
            }
            Self::Sasl { .. } => match message_type {
                b'p' => (LENGTH_FIELD, SMALL_LIMIT),
                // Terminate is read as a client giving up, not a violation.
                b'X' => (LENGTH_FIELD, LENGTH_FIELD),
                other => return Err(FrameError::ExpectedSasl(other)),
            },
            Self::Ready => ready_bounds(message_type)?,
        };
        let (min, max) = bounds;
        match usize::try_from(length) {
            Ok(len) if (min..=max).contains(&len) => Ok(()),
            _ => Err(FrameError::Length {
                message_type,
                length: i64::from(length),
            }),
        }
    }

    /// Checks a whole frame's body where pgwire would otherwise panic on it.
    ///
    /// # Errors
    /// [`FrameError::Format`] for a SASLInitialResponse without its mechanism name, its
    /// response length, or exactly the response bytes that length announces; after
    /// authentication, for a body without exactly its type's fields ([`message_fields`]).
    fn check_body(self, message_type: u8, body: &[u8]) -> Result<(), FrameError> {
        match self {
            Self::Sasl { initial: true } if message_type == b'p' => {
                check_sasl_initial_response(body)
            }
            Self::Ready => message_fields::check(message_type, body)
                .map_err(|error| FrameError::Format(error.to_string())),
            _ => Ok(()),
        }
    }
}

/// Smallest and largest length of each message type after authentication. The smallest is
/// that of the fixed fields with empty strings; types without a body are exactly 4.
fn ready_bounds(message_type: u8) -> Result<(usize, usize), FrameError> {
    Ok(match message_type {
        // query NUL
        b'Q' => (LENGTH_FIELD + 1, LARGE_LIMIT),
        // statement NUL, query NUL, parameter type count (i16)
        b'P' => (LENGTH_FIELD + 4, LARGE_LIMIT),
        // portal NUL, statement NUL, format, parameter and result format counts (3 × i16)
        b'B' => (LENGTH_FIELD + 8, LARGE_LIMIT),
        // portal NUL, row limit (i32)
        b'E' => (LENGTH_FIELD + 5, SMALL_LIMIT),
        // 'S' or 'P', name NUL
        b'D' | b'C' => (LENGTH_FIELD + 2, SMALL_LIMIT),
        // Flush, Sync, Terminate, CopyDone
        b'H' | b'S' | b'X' | b'c' => (LENGTH_FIELD, LENGTH_FIELD),
        b'd' => (LENGTH_FIELD, LARGE_LIMIT),
        // CopyFail: message NUL
        b'f' => (LENGTH_FIELD + 1, SMALL_LIMIT),
        b'F' => return Err(FrameError::FunctionCall),
        other => return Err(FrameError::UnknownType(other)),
    })
}

/// A SASLInitialResponse body: mechanism name NUL, response length (i32, −1 for none), then
/// exactly that many bytes. pgwire reads these fields unchecked.
fn check_sasl_initial_response(body: &[u8]) -> Result<(), FrameError> {
    let malformed = || FrameError::Format("malformed SASLInitialResponse".to_owned());
    let name_end = body.iter().position(|&b| b == 0).ok_or_else(malformed)?;
    let mut rest = &body[name_end + 1..];
    if rest.len() < 4 {
        return Err(malformed());
    }
    let announced = rest.get_i32();
    let exact = match announced {
        -1 => rest.is_empty(),
        n => usize::try_from(n).is_ok_and(|n| n == rest.len()),
    };
    if exact { Ok(()) } else { Err(malformed()) }
}

/// What the reader read: a whole frame, or a statement too long to keep.
#[derive(Debug)]
pub enum Frame {
    /// The type byte (if any), the length and the body.
    Whole(BytesMut),
    /// A Query (`b'Q'`) or Parse (`b'P'`) whose SQL is longer than the limit: read past,
    /// not kept.
    Oversized {
        /// The type byte.
        message_type: u8,
        /// The message's length field.
        length: usize,
    },
}

/// Reads whole, checked frames from a connection's socket.
#[derive(Debug)]
pub struct FrameReader {
    buffer: BytesMut,
    /// Longest SQL text kept (`pg.max_query_size`).
    max_sql: usize,
}

impl FrameReader {
    /// A reader that first takes the bytes already read from the socket (during TLS
    /// negotiation), and keeps SQL up to `max_sql` bytes.
    pub fn new(buffered: BytesMut, max_sql: usize) -> Self {
        Self {
            buffer: buffered,
            max_sql,
        }
    }

    /// Reads the next frame `phase` allows: the type byte (if any), the length and the body.
    /// `None` when the client closed the connection between frames.
    ///
    /// # Errors
    /// The [`FrameError`] the connection ends with; [`FrameError::Io`] for a socket error or
    /// a close within a frame.
    ///
    /// # Cancellation
    /// Safe to drop while a frame is kept: bytes read so far stay buffered. Dropped while
    /// reading past an oversized statement, the reader is out of step: end the connection.
    pub async fn next_frame<R>(
        &mut self,
        io: &mut R,
        phase: Phase,
    ) -> Result<Option<Frame>, FrameError>
    where
        R: AsyncRead + Unpin,
    {
        let header = phase.type_bytes() + LENGTH_FIELD;
        if !self.fill(io, header).await? {
            return Ok(None);
        }
        let message_type = if phase == Phase::Startup {
            0
        } else {
            self.buffer[0]
        };
        let mut length_field = &self.buffer[phase.type_bytes()..header];
        let length = length_field.get_i32();
        phase.check_header(message_type, length)?;
        // check_header bounds `length` to 4..=LARGE_LIMIT, so this neither wraps nor overflows.
        let length = length as usize;
        let frame_len = phase.type_bytes() + length;
        if phase == Phase::Ready && self.too_long(message_type, length) {
            self.skip(io, frame_len).await?;
            return Ok(Some(Frame::Oversized {
                message_type,
                length,
            }));
        }
        if !self.fill(io, frame_len).await? {
            return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        let frame = self.buffer.split_to(frame_len);
        phase.check_body(message_type, &frame[header..])?;
        Ok(Some(Frame::Whole(frame)))
    }

    /// Whether a message of `length` certainly holds SQL longer than the limit.
    fn too_long(&self, message_type: u8, length: usize) -> bool {
        let body = length - LENGTH_FIELD;
        match message_type {
            // The SQL and its terminator.
            b'Q' => body > self.max_sql + 1,
            b'P' => body > self.max_sql.saturating_add(PARSE_OVERHEAD),
            _ => false,
        }
    }

    /// Reads past the frame of `len` bytes at the front, keeping none of it.
    async fn skip<R>(&mut self, io: &mut R, len: usize) -> Result<(), FrameError>
    where
        R: AsyncRead + Unpin,
    {
        let mut left = len;
        loop {
            let buffered = self.buffer.len().min(left);
            self.buffer.advance(buffered);
            left -= buffered;
            if left == 0 {
                return Ok(());
            }
            self.buffer.clear();
            self.buffer.reserve(READ_CHUNK);
            if io.read_buf(&mut self.buffer).await? == 0 {
                return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Reads until `len` bytes are buffered; `false` if the client closed before any byte
    /// beyond what is buffered arrived.
    async fn fill<R>(&mut self, io: &mut R, len: usize) -> Result<bool, FrameError>
    where
        R: AsyncRead + Unpin,
    {
        while self.buffer.len() < len {
            self.buffer
                .reserve((len - self.buffer.len()).max(READ_CHUNK));
            if io.read_buf(&mut self.buffer).await? == 0 {
                if self.buffer.is_empty() {
                    return Ok(false);
                }
                return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(true)
    }
}

/// How much to ask the socket for when waiting for a header.
const READ_CHUNK: usize = 8 * 1024;

/// Decodes one whole frame with pgwire. A frame its decoder does not consume exactly, or on
/// which it panics (its decoders read fixed fields unchecked), is malformed: the panic is
/// caught here so that it ends this connection with an answer, not its task in silence.
///
/// # Errors
/// [`FrameError::Format`] for a malformed frame.
pub fn decode(
    mut frame: BytesMut,
    phase: Phase,
    protocol_version: ProtocolVersion,
) -> Result<PgWireFrontendMessage, FrameError> {
    if phase == Phase::Ready {
        message_fields::bound_row_limit(&mut frame);
    }
    let mut context = DecodeContext::new(protocol_version);
    context.awaiting_frontend_ssl = false;
    context.awaiting_frontend_startup = phase == Phase::Startup;
    // Unwind safety: on a panic the frame and context are dropped and never looked at again.
    let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        PgWireFrontendMessage::decode(&mut frame, &context)
    }));
    match decoded {
        Ok(Ok(Some(message))) if frame.is_empty() => Ok(message),
        Ok(Ok(Some(_))) => Err(FrameError::Format(format!(
            "{} bytes left over after the message",
            frame.len()
        ))),
        // The frame is whole, so "need more bytes" means its fields claim more than it holds.
        Ok(Ok(None)) => Err(FrameError::Format("message shorter than its fields".into())),
        Ok(Err(error)) => Err(FrameError::Format(error.to_string())),
        Err(_) => Err(FrameError::Format("message fields out of bounds".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(message_type: u8, body: &[u8]) -> BytesMut {
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&[message_type]);
        frame.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        frame.extend_from_slice(body);
        frame
    }

    async fn read(bytes: &[u8], phase: Phase) -> Result<Option<Frame>, FrameError> {
        let mut io = bytes;
        FrameReader::new(BytesMut::new(), 1 << 20)
            .next_frame(&mut io, phase)
            .await
    }

    #[tokio::test]
    async fn sql_over_the_limit_is_read_past_and_the_next_frame_is_whole() {
        let long = format!("SELECT '{}'\0", "x".repeat(100));
        let mut bytes = frame(b'Q', long.as_bytes()).to_vec();
        bytes.extend_from_slice(&frame(b'Q', b"SELECT 1\0"));
        bytes.extend_from_slice(&frame(b'P', format!("\0{long}\0\0").as_bytes()));
        let mut io = &bytes[..];
        let mut reader = FrameReader::new(BytesMut::new(), 50);
        let first = reader.next_frame(&mut io, Phase::Ready).await;
        assert!(
            matches!(
                first,
                Ok(Some(Frame::Oversized {
                    message_type: b'Q',
                    length: 114
                }))
            ),
            "{first:?}"
        );
        let second = reader.next_frame(&mut io, Phase::Ready).await;
        assert!(
            matches!(&second, Ok(Some(Frame::Whole(f))) if f[5..] == *b"SELECT 1\0"),
            "{second:?}"
        );
        // A Parse is refused only when its SQL is certainly too long: this one is kept.
        let third = reader.next_frame(&mut io, Phase::Ready).await;
        assert!(matches!(third, Ok(Some(Frame::Whole(_)))), "{third:?}");
        assert!(matches!(
            reader.next_frame(&mut io, Phase::Ready).await,
            Ok(None)
        ));
    }

    #[tokio::test]
    async fn lengths_below_the_type_minimum_are_refused_before_the_body() {
        for length in [i32::MIN, -1, 0, 3, 4] {
            let mut bytes = vec![b'Q'];
            bytes.extend_from_slice(&length.to_be_bytes());
            let error = read(&bytes, Phase::Ready).await.expect_err("too short");
            assert!(
                matches!(
                    error,
                    FrameError::Length {
                        message_type: b'Q',
                        ..
                    }
                ),
                "{error}"
            );
        }
        let mut sync = vec![b'S'];
        sync.extend_from_slice(&5i32.to_be_bytes());
        assert!(matches!(
            read(&sync, Phase::Ready).await,
            Err(FrameError::Length { .. })
        ));
        // Checked on the header alone: no body needed to refuse a huge Execute.
        let mut execute = vec![b'E'];
        execute.extend_from_slice(&1_000_000i32.to_be_bytes());
        assert!(matches!(
            read(&execute, Phase::Ready).await,
            Err(FrameError::Length { .. })
        ));
    }

    #[tokio::test]
    async fn only_password_messages_pass_during_sasl() {
        let query = frame(b'Q', b"SELECT 1\0");
        let error = read(&query, Phase::Sasl { initial: true })
            .await
            .expect_err("query during SASL");
        assert_eq!(
            error.to_string(),
            "expected SASL response, got message type 81"
        );
        let error = read(&frame(b'p', b"pw\0"), Phase::Ready)
            .await
            .expect_err("password after login");
        assert_eq!(error.to_string(), "invalid frontend message type 112");
        assert!(read(&query, Phase::Ready).await.is_ok_and(|f| f.is_some()));
    }

    #[tokio::test]
    async fn sasl_initial_responses_must_hold_their_fields() {
        let initial = Phase::Sasl { initial: true };
        for body in [
            &b"pw\0"[..],
            b"SCRAM-SHA-256",
            b"SCRAM-SHA-256\0\0\0\0\x09abc",
        ] {
            assert!(
                matches!(
                    read(&frame(b'p', body), initial).await,
                    Err(FrameError::Format(_))
                ),
                "{body:?}"
            );
        }
        let good = frame(b'p', b"SCRAM-SHA-256\0\0\0\0\x03abc");
        assert!(read(&good, initial).await.is_ok_and(|f| f.is_some()));
        // Later SASLResponses are opaque bytes.
        let later = frame(b'p', b"pw\0");
        assert!(
            read(&later, Phase::Sasl { initial: false })
                .await
                .is_ok_and(|f| f.is_some())
        );
    }

    #[tokio::test]
    async fn startup_packet_lengths_are_bounded() {
        for length in [0i32, 7, 10_001, -8] {
            let error = read(&length.to_be_bytes(), Phase::Startup)
                .await
                .expect_err("bad startup length");
            assert!(matches!(error, FrameError::StartupLength(_)));
        }
        assert!(read(&[], Phase::Startup).await.is_ok_and(|f| f.is_none()));
    }

    #[test]
    fn decoding_takes_exactly_one_frame_and_never_panics() {
        let v3 = ProtocolVersion::PROTOCOL3_0;
        assert!(matches!(
            decode(frame(b'Q', b"SELECT 1\0"), Phase::Ready, v3),
            Ok(PgWireFrontendMessage::Query(_))
        ));
        // A string ending early leaves bytes over.
        assert!(matches!(
            decode(frame(b'Q', b"SELECT 1\0junk"), Phase::Ready, v3),
            Err(FrameError::Format(_))
        ));
        // Execute whose portal name eats its row limit: pgwire's decoder panics on it.
        assert!(matches!(
            decode(frame(b'E', b"abcd\0"), Phase::Ready, v3),
            Err(FrameError::Format(_))
        ));
    }

    #[test]
    fn violations_are_fatal_protocol_errors() {
        let error = FrameError::ExpectedSasl(b'Q').to_client();
        assert!(error.is_fatal());
        assert_eq!(error.code(), "08P01");
        assert_eq!(FrameError::FunctionCall.to_client().code(), "0A000");
    }
}
