//! The agent's stdout cut into lines as it arrives, within fixed memory.

/// Splits a byte stream into lines within fixed memory: a line longer than `cap` is passed on
/// cut to `cap` bytes (it will not parse, and is counted as skipped).
#[derive(Debug)]
pub struct Lines {
    buf: Vec<u8>,
    cap: usize,
    overlong: bool,
}

impl Lines {
    pub fn new(cap: usize) -> Lines {
        Lines {
            buf: Vec::new(),
            cap,
            overlong: false,
        }
    }

    /// Feeds a chunk; calls `each` with every line it completes (without the newline).
    pub fn feed(&mut self, mut chunk: &[u8], each: &mut impl FnMut(&[u8])) {
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            self.take(&chunk[..nl]);
            each(&self.buf);
            self.buf.clear();
            self.overlong = false;
            chunk = &chunk[nl + 1..];
        }
        self.take(chunk);
    }

    /// The last line if the stream did not end with a newline.
    pub fn finish(&mut self, each: &mut impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            each(&self.buf);
            self.buf.clear();
        }
    }

    fn take(&mut self, part: &[u8]) {
        if self.overlong {
            return;
        }
        let room = self.cap - self.buf.len();
        if part.len() > room {
            self.buf.extend_from_slice(&part[..room]);
            self.overlong = true;
        } else {
            self.buf.extend_from_slice(part);
        }
    }
}
