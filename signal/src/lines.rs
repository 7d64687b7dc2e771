//! Reads the core's lines without leaving copies behind: the core's first line on a sealed
//! installation carries the store passphrase, and a `BufReader` would keep its bytes in a
//! buffer that is freed, not wiped (and a growing `String` leaves a copy at every move).
//!
//! [`LineReader`] reads into one buffer reserved whole up front (it never grows, so it never
//! moves), hands each line out as a [`Zeroizing`] string, wipes what it hands out from the
//! buffer at once, and wipes the buffer when dropped. It is cancel-safe: what was read stays
//! in the buffer until the next call (the relay reads inside `select!`).

use pane_protocol::messages::MAX_LINE_BYTES;
use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::{Zeroize, Zeroizing};

/// How much one read takes from the socket at most.
const CHUNK: usize = 8 * 1024;

/// What the core wrote next.
#[derive(Debug)]
pub enum Read {
    /// One line, without its newline.
    Line(Zeroizing<String>),
    /// A line longer than the protocol allows (skipped whole) or not UTF-8.
    Refused(&'static str),
    /// The end of the stream (or a read error: the connection is gone either way).
    End,
}

/// A line reader that wipes what it read.
pub struct LineReader<R> {
    inner: R,
    /// Bytes read and not yet handed out; its capacity never changes.
    buf: Zeroizing<Vec<u8>>,
    /// Inside a line over the limit: its bytes are dropped up to its newline.
    skipping: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Reads lines from `inner`.
    pub fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner,
            buf: Zeroizing::new(Vec::with_capacity(MAX_LINE_BYTES + 1 + CHUNK)),
            skipping: false,
        }
    }

    /// The next line, [`Read::End`] at the end of the stream.
    pub async fn next_line(&mut self) -> Read {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let skipped = std::mem::replace(&mut self.skipping, false);
                let refused = skipped || at > MAX_LINE_BYTES;
                let line = (!refused).then(|| Zeroizing::new(self.buf[..at].to_vec()));
                self.consume(at + 1);
                let Some(mut line) = line else {
                    return Read::Refused("a line over the protocol's limit");
                };
                // Moved, not copied: the bytes become the string's.
                return match String::from_utf8(std::mem::take(&mut *line)) {
                    Ok(text) => Read::Line(Zeroizing::new(text)),
                    Err(e) => {
                        e.into_bytes().zeroize();
                        Read::Refused("a line that is not UTF-8")
                    }
                };
            }
            if self.buf.len() > MAX_LINE_BYTES {
                // Over the limit with no end in sight: drop it, then up to its newline.
                let n = self.buf.len();
                self.consume(n);
                self.skipping = true;
            }
            let mut chunk = Zeroizing::new([0u8; CHUNK]);
            let n = match self.inner.read(&mut chunk[..]).await {
                Ok(0) | Err(_) => return Read::End,
                Ok(n) => n,
            };
            // Within the capacity reserved: the buffer holds at most the limit plus a chunk.
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Drops the first `n` bytes and wipes the space they leave at the end.
    fn consume(&mut self, n: usize) {
        let len = self.buf.len();
        self.buf.copy_within(n..len, 0);
        self.buf[len - n..].zeroize();
        self.buf.truncate(len - n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn line(r: Read) -> String {
        match r {
            Read::Line(l) => l.to_string(),
            other => panic!("not a line: {other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reads_lines_skips_long_ones_and_keeps_nothing_it_handed_out() {
        let (mut w, r) = tokio::io::duplex(1 << 20);
        let mut reader = LineReader::new(r);
        let capacity = reader.buf.capacity();
        w.write_all(b"one\ntwo\n").await.unwrap();
        assert_eq!(line(reader.next_line().await), "one");
        // What is handed out is gone from the buffer.
        assert_eq!(&reader.buf[..], b"two\n");
        w.write_all(&vec![b'x'; MAX_LINE_BYTES + 10]).await.unwrap();
        w.write_all(b"\nthree\n\xff\nfour").await.unwrap();
        assert_eq!(line(reader.next_line().await), "two");
        assert!(matches!(reader.next_line().await, Read::Refused(_)));
        assert_eq!(line(reader.next_line().await), "three");
        assert!(matches!(reader.next_line().await, Read::Refused(_)));
        drop(w);
        // A last line without its newline is not a line.
        assert!(matches!(reader.next_line().await, Read::End));
        assert_eq!(reader.buf.capacity(), capacity, "the buffer never moved");
    }
}
