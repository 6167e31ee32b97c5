//! A guest's stdout or stderr, kept in memory up to a cap and emptied after each
//! invocation. wasmtime-wasi's `MemoryOutputPipe` can only be read, never emptied, so a
//! WASI context built with it serves one invocation; with this pipe one context serves
//! every invocation of a plugin (see `WasiContexts`).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

#[derive(Clone)]
pub(super) struct CapturedOutput {
    capacity: usize,
    buffer: Arc<Mutex<BytesMut>>,
}

impl CapturedOutput {
    pub(super) fn new(capacity: usize) -> Self {
        CapturedOutput {
            capacity,
            buffer: Arc::default(),
        }
    }

    /// What the guest wrote since the last take; the pipe is empty afterwards.
    pub(super) fn take(&self) -> Bytes {
        self.lock().split().freeze()
    }

    /// A guest that panicked while holding the lock cannot exist (guests never hold it);
    /// a poisoned buffer is still a buffer.
    fn lock(&self) -> std::sync::MutexGuard<'_, BytesMut> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends what fits; the number of bytes taken.
    fn append(&self, bytes: &[u8]) -> usize {
        let mut buffer = self.lock();
        let taken = bytes.len().min(self.capacity.saturating_sub(buffer.len()));
        buffer.extend_from_slice(&bytes[..taken]);
        taken
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

// As wasmtime-wasi's memory pipe: a write past the cap traps the guest, which then
// reports its output as too large rather than losing it silently.
#[async_trait::async_trait]
impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        let mut buffer = self.lock();
        if bytes.len() > self.capacity.saturating_sub(buffer.len()) {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "the guest wrote more than {} bytes of output",
                self.capacity
            )));
        }
        buffer.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        match self.capacity.saturating_sub(self.lock().len()) {
            0 => Err(StreamError::Closed),
            room => Ok(room),
        }
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.append(buf)))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_kept_up_to_the_cap_and_emptied_by_each_take() {
        let mut pipe = CapturedOutput::new(8);
        pipe.write(Bytes::from_static(b"hello")).unwrap();
        assert_eq!(pipe.check_write().unwrap(), 3);
        assert!(matches!(
            pipe.write(Bytes::from_static(b"world")),
            Err(StreamError::Trap(_))
        ));
        assert_eq!(&pipe.take()[..], b"hello");
        assert!(pipe.take().is_empty());
        // Emptied, the pipe takes a full cap again; a full one is closed.
        pipe.write(Bytes::from_static(b"12345678")).unwrap();
        assert!(matches!(pipe.check_write(), Err(StreamError::Closed)));
        assert_eq!(pipe.append(b"x"), 0);
        assert_eq!(&pipe.take()[..], b"12345678");
        assert_eq!(pipe.append(b"abc"), 3);
        assert_eq!(&pipe.take()[..], b"abc");
    }
}
