//! The first bytes of a connection, read under a deadline. hyper's automatic HTTP/1-or-HTTP/2
//! detection waits for them without one, so a socket that sends nothing, or only `PRI`, would
//! otherwise stay open forever. The bytes read are handed back to hyper through [`Prefixed`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// What an HTTP/2 client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads until the protocol is known (the whole HTTP/2 preface, or a byte that cannot be part
/// of it), within `limit`. `None` when the client closed or took too long.
pub async fn read_prefix<S: AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> Option<Vec<u8>> {
    let read = async {
        let mut prefix = vec![0u8; H2_PREFACE.len()];
        let mut len = 0;
        while len < H2_PREFACE.len() {
            let n = stream.read(&mut prefix[len..]).await.ok()?;
            if n == 0 {
                return None;
            }
            len += n;
            if prefix[..len] != H2_PREFACE[..len] {
                break;
            }
        }
        prefix.truncate(len);
        Some(prefix)
    };
    tokio::time::timeout(limit, read).await.ok().flatten()
}

/// `inner` with `prefix` put back in front of what it reads.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    taken: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// Reads `prefix` first, then `inner`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed {
            prefix,
            taken: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.taken < this.prefix.len() {
            let rest = &this.prefix[this.taken..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.taken += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn http1_is_known_at_its_first_byte_and_http2_after_the_preface() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let prefix = read_prefix(&mut server, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(prefix, b"GET / HTTP/1.1\r\n"[..prefix.len()]);
        let mut replayed = Prefixed::new(prefix, server);
        let mut line = [0u8; 16];
        replayed.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"GET / HTTP/1.1\r\n");

        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(H2_PREFACE).await.unwrap();
        let prefix = read_prefix(&mut server, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(prefix, H2_PREFACE);

        // A client that closes after `PRI` is dropped, not waited on.
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"PRI").await.unwrap();
        drop(client);
        assert!(read_prefix(&mut server, Duration::from_secs(60))
            .await
            .is_none());
    }
}
