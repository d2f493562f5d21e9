//! A connection's writes under a deadline. hyper has no write timeout: a
//! client that stops reading our responses (its receive window full, or a
//! few thousand pipelined requests it never reads the answers to) held its
//! connection, and its slot, for ever. As nginx's `send_timeout`, the
//! deadline is between two writes that make progress, not for a whole
//! response. It also says whether a write is waiting (see [`Writing`]).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Sleep, sleep};

/// Whether a connection's write is waiting for the peer to take more: a
/// response not yet all handed to the kernel, which closing the connection
/// would cut. Set only while a write waits, so writes that go straight out
/// pay nothing for it.
#[derive(Clone, Default)]
pub(super) struct Writing(Arc<AtomicBool>);

impl Writing {
    /// Whether a write is waiting now.
    pub(super) fn now(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// `io` whose writes fail with [`io::ErrorKind::TimedOut`] once one has
/// waited `timeout` for the peer to take more. The timer exists only while
/// a write waits, so a connection whose writes go straight out pays for
/// none.
pub(super) struct WriteDeadline<T> {
    io: T,
    timeout: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
    writing: Writing,
}

impl<T> WriteDeadline<T> {
    /// `io`, its writes under `timeout`, saying through `writing` whether
    /// one is waiting.
    pub(super) fn new(io: T, timeout: Duration, writing: Writing) -> Self {
        Self {
            io,
            timeout,
            waiting: None,
            writing,
        }
    }

    /// Passes `poll` on; while it is pending, times the wait, and ends it
    /// with an error once the deadline passes.
    fn timed<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            if self.waiting.take().is_some() {
                self.writing.0.store(false, Ordering::Release);
            }
            return poll;
        }
        let timeout = self.timeout;
        if self.waiting.is_none() {
            self.writing.0.store(true, Ordering::Release);
        }
        let timer = self.waiting.get_or_insert_with(|| Box::pin(sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.waiting = None;
                self.writing.0.store(false, Ordering::Release);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client took none of the response for {timeout:?}"),
                )))
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.timed(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.timed(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.timed(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_shutdown(cx);
        self.timed(cx, poll)
    }
}
