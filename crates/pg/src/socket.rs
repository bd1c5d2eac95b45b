//! Opening a session's socket the way libpq does: a Unix socket in a directory, or TCP to
//! `hostaddr` when given, else to each address the host name resolves to in turn; TCP without
//! Nagle's delay, with the configured keepalives and user timeout. Sessions open their sockets
//! here, not in tokio-postgres, so that every stream passes through the COPY tap
//! (`copy_out`) whether or not it is encrypted.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::config::{Host, TcpSettings};

/// Where one session connects: the host, its port, and the address to use instead of resolving
/// the host name (`hostaddr`).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: Host,
    pub(crate) port: u16,
    pub(crate) hostaddr: Option<IpAddr>,
    pub(crate) tcp: TcpSettings,
}

impl Endpoint {
    /// Connects a socket. On failure the error of the last address tried.
    pub(crate) async fn open(&self) -> io::Result<Socket> {
        match &self.host {
            Host::Socket(dir) => {
                let path = dir.join(format!(".s.PGSQL.{}", self.port));
                Ok(Socket::Unix(UnixStream::connect(path).await?))
            }
            Host::Tcp(name) => {
                let addresses: Vec<SocketAddr> = match self.hostaddr {
                    Some(ip) => vec![SocketAddr::new(ip, self.port)],
                    None => tokio::net::lookup_host((name.as_str(), self.port))
                        .await?
                        .collect(),
                };
                let mut last = io::Error::new(
                    io::ErrorKind::NotFound,
                    "failed to lookup address information: the host name has no addresses",
                );
                for address in addresses {
                    match TcpStream::connect(address).await {
                        Ok(stream) => {
                            self.tune(&stream)?;
                            return Ok(Socket::Tcp(stream));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }

    fn tune(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let socket = SockRef::from(stream);
        let tcp = &self.tcp;
        #[cfg(target_os = "linux")]
        socket.set_tcp_user_timeout(Some(tcp.user_timeout))?;
        if tcp.keepalives {
            socket.set_tcp_keepalive(
                &TcpKeepalive::new()
                    .with_time(tcp.idle)
                    .with_interval(tcp.interval)
                    .with_retries(tcp.count),
            )?;
        }
        Ok(())
    }
}

/// A connected socket, TCP or Unix.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Socket::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Socket::Tcp(s) => s.is_write_vectored(),
            Socket::Unix(s) => s.is_write_vectored(),
        }
    }
}
